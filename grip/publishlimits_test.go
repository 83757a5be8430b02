package grip

import (
	"strings"
	"testing"
)

func TestCountElements(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		want int
	}{
		{`[]`, 0},
		{` [ ] `, 0},
		{`{}`, 0},
		{`[1]`, 1},
		{`[1,2,3]`, 3},
		{`["a,b","c\",d",[1,2],{"x":[3,4]}]`, 4},
		{`{"a":1,"b":[1,2,3],"c":{"d":1,"e":2}}`, 3},
		{`["\\",","]`, 2},
		{` [ "" , "" ] `, 2},
	} {
		if got := countElements([]byte(tt.raw), 100); got != tt.want {
			t.Errorf("countElements(%s) = %d, want %d", tt.raw, got, tt.want)
		}
	}
	if got := countElements([]byte(`[1,2,3,4,5,6]`), 2); got <= 2 {
		t.Errorf("past the limit: %d", got)
	}
}

// The bodies that cost most memory to parse are refused, each with a
// message naming the field, before their elements are decoded: the
// benchmark's worst cases fail, and their cost is bounded.
func TestParsePublishRefusesAmplifyingBodies(t *testing.T) {
	want := map[string]string{
		"content-filters": "'content-filters' with more than 32",
		"meta":            "'meta' with more than 64",
		"items":           "more than 1000 items",
		"unknown-formats": "'formats' with more than 64",
		"headers":         "'headers' with more than 100",
	}
	for name, body := range worstCaseBodies() {
		_, _, err := ParsePublish(body)
		if err == nil || !strings.Contains(err.Error(), want[name]) {
			t.Errorf("%s: error %v, want it to mention %q", name, err, want[name])
		}
		allocs := testing.AllocsPerRun(1, func() { _, _, _ = ParsePublish(body) })
		if allocs > 1000 {
			t.Errorf("%s: refusing it took %.0f allocations; the limit is checked after decoding", name, allocs)
		}
	}
	// Within the limits, all is well.
	ok := `{"items":[{"channel":"c","meta":{"a":"1"},"formats":{"http-response":{"body":"x","headers":[["A","b"]]},"http-stream":{"content":"x","content-filters":["skip-self"]}}}]}`
	if _, _, err := ParsePublish([]byte(ok)); err != nil {
		t.Fatal(err)
	}
}

func TestElementsAreStrings(t *testing.T) {
	for raw, want := range map[string]bool{
		`[]`: true, `[ ]`: true, `["a"]`: true, `["a", "b,\"c"]`: true, `[ "a" , "b" ]`: true,
		`[1]`: false, `["a",null]`: false, `[["a"]]`: false, `["a",{"b":"c"}]`: false, `[true]`: false,
	} {
		if got := elementsAreStrings([]byte(raw)); got != want {
			t.Errorf("elementsAreStrings(%s) = %v, want %v", raw, got, want)
		}
	}
}

func TestDecodeStringPlainAndEscaped(t *testing.T) {
	for raw, want := range map[string]string{
		`"abc"`: "abc", ` "abc" `: "abc", `"a\"b"`: `a"b`, `"\u00e9"`: "é", `"é"`: "é", "\"\xff\"": "\uFFFD", `""`: "",
	} {
		if got, ok := decodeString([]byte(raw)); !ok || got != want {
			t.Errorf("decodeString(%s) = %q %v, want %q", raw, got, ok, want)
		}
	}
}
