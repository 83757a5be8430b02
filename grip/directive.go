package grip

import (
	"errors"
	"fmt"
)

// expandDirectives expands the %-directives of Pushpin's filter templates
// in s: "%%" is a percent sign, "%(arg)X" and "%X" (X a letter) are
// handed to expand, which returns their text or an error. Anything else
// after a "%" is an error, as in Pushpin, so content meant for var-subst
// must write a literal percent sign as "%%". Inside "(...)" a backslash
// escapes the next byte (a ")" in an argument is written "\)").
func expandDirectives(s []byte, expand func(directive byte, arg string, hasArg bool) ([]byte, error)) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("expected directive after '%%' at position %d", i)
		}
		i++
		switch c = s[i]; {
		case c == '%':
			out = append(out, '%')
		case c == '(':
			arg, end, err := scanDirectiveArg(s, i+1)
			if err != nil {
				return nil, err
			}
			if end+1 >= len(s) {
				return nil, fmt.Errorf("expected directive after ')' at position %d", end)
			}
			i = end + 1
			text, err := expand(s[i], arg, true)
			if err != nil {
				return nil, fmt.Errorf("%w at position %d", err, i)
			}
			out = append(out, text...)
		case isASCIILetter(c):
			text, err := expand(c, "", false)
			if err != nil {
				return nil, fmt.Errorf("%w at position %d", err, i)
			}
			out = append(out, text...)
		default:
			return nil, fmt.Errorf("unknown directive '%c' at position %d", c, i)
		}
	}
	return out, nil
}

// scanDirectiveArg reads the argument of "%(" starting at from, up to the
// closing ")"; end is the position of that ")".
func scanDirectiveArg(s []byte, from int) (arg string, end int, err error) {
	var b []byte
	for i := from; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) {
				return "", 0, fmt.Errorf("expected character after '\\' at position %d", i)
			}
			i++
			b = append(b, s[i])
		case ')':
			return string(b), i, nil
		default:
			b = append(b, s[i])
		}
	}
	return "", 0, fmt.Errorf("unterminated field starting at position %d", from-1)
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// substituteVars is the expansion of var-subst and of build-id's
// id_format: "%(name)s" becomes vars[name]; a name that is not set is an
// error.
func substituteVars(s []byte, vars map[string]string) ([]byte, error) {
	return expandDirectives(s, func(d byte, arg string, hasArg bool) ([]byte, error) {
		if d != 's' {
			return nil, fmt.Errorf("unknown directive '%c'", d)
		}
		if !hasArg {
			return nil, errors.New("directive 's' requires argument")
		}
		v, ok := vars[arg]
		if !ok {
			return nil, fmt.Errorf("no such variable '%s'", arg)
		}
		return []byte(v), nil
	})
}
