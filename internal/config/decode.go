package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The decoder fills a Config from the YAML node tree, walking the struct
// by reflection: a key is the field whose yaml tag names it. It knows the
// key path and the line of every value, so each error reads like a
// compiler's: "line 7: limits.max_channels 0: must be at least 1". Rules:
//
//   - a key no field names is an error, and so is a key given twice;
//   - a missing key, or a null value, leaves the field at its default;
//   - an empty string leaves a string field at its default (Address too);
//   - a field whose type has a set method (Duration, Size, Key, ...)
//     parses its own text; bool, int, string, []string and
//     map[string]string are read by yaml;
//   - tags min:"N" and max:"N" bound an int, a Size (bytes) or a Duration
//     (min:"0" lets a Duration be 0; otherwise it must be more than zero);
//   - after a mapping is filled, its section's check method (if any) runs
//     with the mapping, for rules over several keys;
//   - a type with a decodeNode method (Routes) decodes itself.

// checker is a section with rules over several of its keys. node is the
// section's mapping, for line numbers.
type checker interface {
	check(node *yaml.Node) error
}

// nodeDecoder is a setting that decodes itself from its node.
type nodeDecoder interface {
	decodeNode(node *yaml.Node, path string) error
}

// decode fills v (a pointer to a struct) from node, the mapping of the
// section at path ("" for the top level).
func decode(node *yaml.Node, v reflect.Value, path string, field reflect.StructField) error {
	if node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	if node.Kind == yaml.ScalarNode && node.ShortTag() == "!!null" {
		return nil // "key:" with nothing: the default stays
	}
	if d, ok := v.Addr().Interface().(nodeDecoder); ok {
		return d.decodeNode(node, path)
	}
	if val, ok := v.Addr().Interface().(value); ok {
		return decodeValue(node, val, v, path, field)
	}
	switch v.Kind() {
	case reflect.Struct:
		return decodeStruct(node, v, path)
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		if err := decode(node, elem.Elem(), path, field); err != nil {
			return err
		}
		v.Set(elem)
		return nil
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			return decodeStructs(node, v, path)
		}
	case reflect.String:
		var s string
		if err := node.Decode(&s); err != nil {
			return describeYAMLError(err)
		}
		if s != "" {
			v.SetString(s)
		}
		return nil
	case reflect.Int:
		var n int
		if err := node.Decode(&n); err != nil {
			return describeYAMLError(err)
		}
		if err := checkBounds(int64(n), field, 0, math.MaxInt); err != nil {
			return fmt.Errorf("line %d: %s %d: %v", node.Line, path, n, err)
		}
		v.SetInt(int64(n))
		return nil
	}
	// bool, []string, map[string]string: yaml reads them.
	if err := node.Decode(v.Addr().Interface()); err != nil {
		return describeYAMLError(err)
	}
	return nil
}

// decodeStruct fills the section v from the mapping node.
func decodeStruct(node *yaml.Node, v reflect.Value, path string) error {
	if node.Kind != yaml.MappingNode {
		return notAMapping(node, path)
	}
	seen := map[string]int{}
	// A mapping's Content alternates keys and values.
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, val := node.Content[i], node.Content[i+1]
		if first, dup := seen[key.Value]; dup {
			return fmt.Errorf("line %d: key %q in %s is already set on line %d", key.Line, key.Value, sectionName(path), first)
		}
		seen[key.Value] = key.Line
		field, ok := fieldByKey(v.Type(), key.Value)
		if !ok {
			return fmt.Errorf("line %d: unknown key %q in %s", key.Line, key.Value, sectionName(path))
		}
		if err := decode(val, v.FieldByIndex(field.Index), joinPath(path, key.Value), field); err != nil {
			return err
		}
	}
	if c, ok := v.Addr().Interface().(checker); ok {
		return c.check(node)
	}
	return nil
}

// decodeStructs fills a list of sections (routes) from a sequence node.
func decodeStructs(node *yaml.Node, v reflect.Value, path string) error {
	if node.Kind != yaml.SequenceNode {
		return fmt.Errorf("line %d: %s: want a list", node.Line, path)
	}
	list := reflect.MakeSlice(v.Type(), len(node.Content), len(node.Content))
	for i, item := range node.Content {
		if err := decode(item, list.Index(i), path+"[]", reflect.StructField{}); err != nil {
			return err
		}
	}
	v.Set(list)
	return nil
}

// decodeValue reads a scalar into a type that parses itself, then checks
// its bounds.
func decodeValue(node *yaml.Node, val value, v reflect.Value, path string, field reflect.StructField) error {
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: %s: want a single value, not a %s", node.Line, path, kindName(node))
	}
	fail := func(err error) error {
		if _, ok := val.(secret); ok {
			return fmt.Errorf("line %d: %s: %w", node.Line, path, err)
		}
		return fmt.Errorf("line %d: %s %q: %w", node.Line, path, node.Value, err)
	}
	if err := val.set(node.Value); err != nil {
		return fail(err)
	}
	switch x := v.Interface().(type) {
	case Size:
		if err := checkBounds(int64(x), field, 1, 1<<62); err != nil {
			return fail(fmt.Errorf("%w bytes", err))
		}
	case Duration:
		if x < 0 || (x == 0 && field.Tag.Get("min") != "0") {
			if field.Tag.Get("min") == "0" {
				return fail(errors.New("must not be negative"))
			}
			return fail(errors.New("must be more than zero"))
		}
	}
	return nil
}

// checkBounds checks n against the field's min and max tags, or lo and hi
// when it has none. A bound the field's tags give is named in the error.
func checkBounds(n int64, field reflect.StructField, lo, hi int64) error {
	if s, ok := field.Tag.Lookup("min"); ok {
		lo, _ = strconv.ParseInt(s, 10, 64)
	}
	s, hasMax := field.Tag.Lookup("max")
	if hasMax {
		hi, _ = strconv.ParseInt(s, 10, 64)
	}
	switch {
	case n >= lo && n <= hi:
		return nil
	case !hasMax && field.Type.Kind() == reflect.Int:
		return fmt.Errorf("must be at least %d", lo)
	}
	return fmt.Errorf("must be from %d to %d", lo, hi)
}

// fieldByKey finds the field of a section whose yaml tag is key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if yamlKey(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// yamlKey is the key of a field, from its yaml tag ("" for none).
func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// sectionName names a section in an error: "the top level", "a route",
// "a route's match", "control.auth".
func sectionName(path string) string {
	switch {
	case path == "":
		return "the top level"
	case path == "routes[]":
		return "a route"
	case strings.HasPrefix(path, "routes[]."):
		return "a route's " + strings.TrimPrefix(path, "routes[].")
	}
	return path
}

// notAMapping is the error for a section written as something else.
func notAMapping(node *yaml.Node, path string) error {
	what := node.ShortTag()
	if node.Kind == yaml.ScalarNode {
		what += fmt.Sprintf(" `%s`", node.Value)
	}
	return fmt.Errorf("line %d: cannot unmarshal %s where %s (a mapping) belongs", node.Line, what, sectionName(path))
}

func kindName(node *yaml.Node) string {
	if node.Kind == yaml.SequenceNode {
		return "list"
	}
	return "mapping"
}

// describeYAMLError joins the messages of a yaml.TypeError (each already
// starts with its line); other errors pass through.
func describeYAMLError(err error) error {
	var typeErr *yaml.TypeError
	if errors.As(err, &typeErr) {
		return errors.New(strings.Join(typeErr.Errors, "; "))
	}
	return err
}

// valueNode returns the value of key in a mapping node, or nil when the
// node is nil, not a mapping, or has no such key.
func valueNode(mapping *yaml.Node, key string) *yaml.Node {
	if mapping == nil || mapping.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		if mapping.Content[i].Value == key {
			return mapping.Content[i+1]
		}
	}
	return nil
}

// lineOf returns the line of key's value in mapping, or the mapping's own
// line when the key is absent.
func lineOf(mapping *yaml.Node, key string) int {
	if v := valueNode(mapping, key); v != nil {
		return v.Line
	}
	return nodeLine(mapping)
}

// nodeLine returns a node's line, or 0 for no node.
func nodeLine(node *yaml.Node) int {
	if node == nil {
		return 0
	}
	return node.Line
}
