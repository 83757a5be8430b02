package grip

// Limits on the shape of a publish body. A body is at most 1,000,000
// bytes (the control API's limit), but decoding it builds a structure per
// element: without these, one body of 240,000 empty content filters cost
// 100 MB of allocations. Each limit is checked by counting the elements in
// the raw JSON, before anything is decoded, and a body over one is
// refused whole with a message naming the field (BenchmarkParsePublish
// WorstCase measures what the largest bodies within them cost).
const (
	// MaxPublishItems is the most items in one publish; a publisher with
	// more sends several publishes.
	MaxPublishItems = 1000
	// MaxContentFilters is the most content filters of one format
	// (Pushpin has a handful of filters).
	MaxContentFilters = 32
	// MaxItemMeta is the most keys in one item's meta.
	MaxItemMeta = 64
	// MaxPublishedHeaders is the most headers of one http-response.
	MaxPublishedHeaders = 100
	// maxObjectKeys is the most keys of any other object of a publish
	// body: the body, an item, its formats, a format. Each has a few
	// known keys; the rest are ignored.
	maxObjectKeys = 64
)

// countElements counts the elements of a JSON array or the members of a
// JSON object in raw, which must be valid JSON (ParsePublish checks the
// whole body first), stopping once it passes limit. It allocates nothing:
// it only walks the bytes, keeping track of nesting and strings.
func countElements(raw []byte, limit int) int {
	depth, n := 0, 0
	inString, escaped, empty := false, false, true
	for _, c := range raw {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			if depth == 1 {
				continue
			}
		case c == ']' || c == '}':
			depth--
			if depth == 0 {
				if !empty {
					n++
				}
				return n
			}
		case c == ',' && depth == 1:
			n++
			if n > limit {
				return n
			}
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			continue
		}
		if depth >= 1 {
			empty = false
		}
	}
	return n
}

// elementsAreStrings reports whether every element of raw, a valid JSON
// array, is a string, without decoding any.
func elementsAreStrings(raw []byte) bool {
	depth := 0
	inString, escaped, expectElem := false, false, false
	for _, c := range raw {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		if expectElem && depth == 1 {
			if c != '"' && c != ']' {
				return false
			}
			expectElem = false
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth == 1 {
				expectElem = true
			}
		case ']', '}':
			depth--
		case ',':
			if depth == 1 {
				expectElem = true
			}
		}
	}
	return true
}
