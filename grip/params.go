package grip

import (
	"fmt"
	"strings"
)

// param is one "key=value" (or bare "key") part of a GRIP header value.
type param struct {
	Key   string
	Value string
}

// headerValue is one comma-separated element of a GRIP header: its first
// part (a channel name, keep-alive data, a link) and its parameters.
type headerValue struct {
	First  string
	Params []param
}

// splitOutsideQuotes splits s at every sep that is not inside a
// double-quoted string. A backslash inside quotes escapes the next byte.
func splitOutsideQuotes(s string, sep byte) ([]string, error) {
	var parts []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quoted string in %q", s)
	}
	return append(parts, s[start:]), nil
}

// unquote removes surrounding double quotes and backslash escapes, if any.
func unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseHeaderValue parses `first; k=v; k2="v 2"; flag`.
func parseHeaderValue(s string) (headerValue, error) {
	parts, err := splitOutsideQuotes(s, ';')
	if err != nil {
		return headerValue{}, err
	}
	hv := headerValue{First: unquote(strings.TrimSpace(parts[0]))}
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" {
			return headerValue{}, fmt.Errorf("empty parameter name in %q", s)
		}
		hv.Params = append(hv.Params, param{Key: k, Value: unquote(strings.TrimSpace(v))})
	}
	return hv, nil
}

// parseHeaderList parses every header line given, each split at commas
// outside quotes, into its elements. Empty elements are skipped.
func parseHeaderList(lines []string) ([]headerValue, error) {
	var out []headerValue
	for _, line := range lines {
		elems, err := splitOutsideQuotes(line, ',')
		if err != nil {
			return nil, err
		}
		for _, e := range elems {
			if strings.TrimSpace(e) == "" {
				continue
			}
			hv, err := parseHeaderValue(e)
			if err != nil {
				return nil, err
			}
			out = append(out, hv)
		}
	}
	return out, nil
}
