package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/configuration.md is the reference of every routes.yaml key. These
// tests keep it true: every key the file accepts (the yaml tags of
// Config, walked by reflection) has a row there, every row is a real
// key, and a default written as a literal really is the default. A key
// added to the configuration fails the first test, which names it: add
// its row to the page.

const configDoc = "../../docs/configuration.md"

// docRow is one key's row of the reference.
type docRow struct {
	key, def string
	line     int
}

// keyCell matches a key path in a table's first column: `a.b`, `routes[].c`.
var keyCell = regexp.MustCompile("^\\|\\s*`([a-z0-9_]+(?:\\[\\])?(?:\\.[a-z0-9_]+(?:\\[\\])?)*)`\\s*\\|([^|]*)\\|")

// readConfigDoc returns the key rows of docs/configuration.md.
func readConfigDoc(t *testing.T) []docRow {
	t.Helper()
	data, err := os.ReadFile(configDoc)
	if err != nil {
		t.Fatalf("the configuration reference: %v", err)
	}
	var rows []docRow
	for i, line := range strings.Split(string(data), "\n") {
		if m := keyCell.FindStringSubmatch(line); m != nil {
			rows = append(rows, docRow{key: m[1], def: strings.TrimSpace(m[2]), line: i + 1})
		}
	}
	if len(rows) == 0 {
		t.Fatalf("%s has no key rows (| `key` | default | ...)", configDoc)
	}
	return rows
}

// yamlKeys returns the key path of every leaf the YAML file can set, from
// the yaml tags of typ: a.b for a nested mapping, routes[].x for a key of
// each item of a list of mappings. Maps and lists of scalars are leaves.
func yamlKeys(typ reflect.Type, prefix string) []string {
	var keys []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := prefix + name
		ft := f.Type
		if shaped, ok := reflect.Zero(ft).Interface().(interface{ yamlShape() reflect.Type }); ok {
			ft = shaped.yamlShape() // routes: written as a list of RouteSpec
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			keys = append(keys, yamlKeys(ft, path+".")...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			keys = append(keys, yamlKeys(ft.Elem(), path+"[].")...)
		default:
			keys = append(keys, path)
		}
	}
	return keys
}

func TestConfigurationDocCoversEveryKey(t *testing.T) {
	keys := yamlKeys(reflect.TypeFor[Config](), "")
	if !slices.Contains(keys, "routes[].match.path_prefix") || !slices.Contains(keys, "nats.embedded.cluster.routes") {
		t.Fatalf("walking Config found %v; the walk is broken", keys)
	}
	documented := map[string]docRow{}
	for _, r := range readConfigDoc(t) {
		if prev, dup := documented[r.key]; dup {
			t.Errorf("%s:%d: %s is documented again (first on line %d)", configDoc, r.line, r.key, prev.line)
		}
		documented[r.key] = r
		if r.def == "" {
			t.Errorf("%s:%d: %s has no default", configDoc, r.line, r.key)
		}
	}
	var missing []string
	for _, k := range keys {
		if _, ok := documented[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s does not document these routes.yaml keys; add a row for each (| `key` | default | flag | meaning |):\n  %s",
			configDoc, strings.Join(missing, "\n  "))
	}
	for k, r := range documented {
		if !slices.Contains(keys, k) {
			t.Errorf("%s:%d documents %s, which the configuration does not accept (no such yaml tag in Config)", configDoc, r.line, k)
		}
	}
}

// literalDefault is a default cell holding one value in backticks.
var literalDefault = regexp.MustCompile("^`([^`]+)`$")

// yamlSetting writes key (a path from the reference) set to value as a
// YAML document; a routes[] key goes into one otherwise minimal route.
func yamlSetting(key, value string) (doc, base string) {
	const route = "routes:\n  - backends: [\"http://127.0.0.1:8000\"]\n"
	indent := ""
	var b strings.Builder
	if rest, ok := strings.CutPrefix(key, "routes[]."); ok {
		base = route
		b.WriteString(route)
		key, indent = rest, "    "
	}
	parts := strings.Split(key, ".")
	for i, p := range parts {
		b.WriteString(indent + p + ":")
		if i == len(parts)-1 {
			b.WriteString(" " + value)
		}
		b.WriteString("\n")
		indent += "  "
	}
	return b.String(), base
}

// Writing a key's documented default into the file changes nothing.
func TestConfigurationDocDefaults(t *testing.T) {
	checked := 0
	for _, r := range readConfigDoc(t) {
		m := literalDefault.FindStringSubmatch(r.def)
		if m == nil {
			continue // "none", "required", prose: nothing to write
		}
		doc, base := yamlSetting(r.key, m[1])
		with, err := Parse([]byte(doc))
		if err != nil {
			t.Errorf("%s:%d: %s: the documented default %s is refused: %v\n%s", configDoc, r.line, r.key, m[1], err, doc)
			continue
		}
		without, err := Parse([]byte(base))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(with, without) {
			t.Errorf("%s:%d: %s: %s is not the default: the file\n%sgives\n  %+v\nand without the key\n  %+v",
				configDoc, r.line, r.key, m[1], doc, with, without)
		}
		checked++
	}
	if checked < 10 {
		t.Errorf("only %d defaults checked; the reference's defaults are not in backticks any more?", checked)
	}
}
