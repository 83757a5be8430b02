package proxy

import (
	"encoding/base64"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseRouteLine checks that ParseRouteLine never panics, that a route
// it accepts is one the route table accepts too, and that formatting the
// route back into a line and parsing that gives the same route.
//
// The seed corpus is in testdata/fuzz/FuzzParseRouteLine.
func FuzzParseRouteLine(f *testing.F) {
	f.Fuzz(func(t *testing.T, line string) {
		// sig_key=file:PATH reads a file; the fuzzer must not make it read
		// /dev/zero or wait on /dev/stdin.
		if strings.Contains(line, "file:") {
			t.Skip()
		}
		route, err := ParseRouteLine(line)
		if err != nil {
			if errors.Is(err, ErrBlankLine) && strings.TrimSpace(line) != "" &&
				!strings.HasPrefix(strings.TrimLeft(line, " \t"), "#") {
				t.Fatalf("ParseRouteLine(%q) = ErrBlankLine for a line that is not blank", line)
			}
			return
		}
		if len(route.Backends) == 0 {
			t.Fatalf("ParseRouteLine(%q) returned a route with no backends", line)
		}
		if route.ID == "" {
			t.Fatalf("ParseRouteLine(%q) returned a route with no id", line)
		}
		if _, err := NewTable([]Route{route}); err != nil {
			t.Fatalf("ParseRouteLine(%q) accepted a route NewTable rejects: %v", line, err)
		}
		route.RewritePath(line) // must not panic either

		formatted := formatRouteLine(route)
		again, err := ParseRouteLine(formatted)
		if err != nil {
			t.Fatalf("ParseRouteLine(%q) -> %q, which does not parse: %v", line, formatted, err)
		}
		if !reflect.DeepEqual(route, again) {
			t.Fatalf("round trip changed the route:\n line %q\n  got %#v\n line %q\n  got %#v", line, route, formatted, again)
		}
	})
}

// formatRouteLine writes a route parsed from a route line back as a line.
// It lives in the tests only: it would print signing keys, so it is not
// something to offer for logging.
func formatRouteLine(r Route) string {
	host := r.Host
	if host == "" {
		host = "*"
	}
	condition := []string{quoteRouteValue(host)}
	addProp := func(name, value string) {
		condition = append(condition, name+"="+quoteRouteValue(value))
	}
	addProp("id", r.ID)
	if r.PathPrefix != "" {
		addProp("path_beg", r.PathPrefix)
	}
	if r.ReplacePrefix != nil {
		addProp("replace_beg", *r.ReplacePrefix)
	}
	if r.StripChars > 0 {
		addProp("path_rem", strconv.Itoa(r.StripChars))
	}
	if r.SigIss != "" {
		addProp("sig_iss", r.SigIss)
	}
	if r.SigKey != nil {
		addProp("sig_key", "base64:"+base64.StdEncoding.EncodeToString(r.SigKey))
	}
	if r.NoGrip {
		condition = append(condition, "no_grip")
	}
	if r.AutoCrossOrigin {
		condition = append(condition, "aco")
	}
	names := make([]string, 0, len(r.SetHeaders))
	for name := range r.SetHeaders {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		addProp("header", name+":"+r.SetHeaders.Get(name))
	}

	sections := []string{strings.Join(condition, ",")}
	for _, b := range r.Backends {
		target := []string{b.URL.Host}
		if b.URL.Scheme == "https" {
			target = append(target, "ssl")
		}
		if b.Insecure {
			target = append(target, "insecure")
		}
		if b.HostHeader != "" {
			target = append(target, "host="+quoteRouteValue(b.HostHeader))
		}
		if b.OverHTTP {
			target = append(target, "over_http")
		}
		sections = append(sections, strings.Join(target, ","))
	}
	return strings.Join(sections, " ")
}

// quoteRouteValue quotes a value when it holds a character the route line
// syntax gives meaning to.
func quoteRouteValue(value string) string {
	if !strings.ContainsAny(value, " \t,#\"\\") {
		return value
	}
	escaped := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(value)
	return `"` + escaped + `"`
}
