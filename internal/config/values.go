package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gripd/gripd/proxy"
)

// The value types below read themselves from the text of one YAML scalar
// or one flag. The decoder puts the key path and the line in front of
// their errors ("line 3: limits.max_request_body "10 MiBs": want ..."),
// so an error here only says what is wrong with the text.

// value is a setting that parses its own text.
type value interface {
	set(text string) error
}

// secret is a value whose text must not appear in an error message.
type secret interface {
	value
	isSecret()
}

// Duration is a Go duration ("500ms", "1m30s"). A key of this type must be
// more than zero unless its field's tag says min:"0".
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d as Go does ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

func (d *Duration) set(text string) error {
	parsed, err := time.ParseDuration(strings.TrimSpace(text))
	if err != nil {
		return errors.New("want a duration such as 10s or 2m")
	}
	*d = Duration(parsed)
	return nil
}

// Size is a byte count: a whole number ("1048576"), or one with a unit
// ("64KiB", "10 MiB", "1GB"; binary KiB/MiB/GiB or decimal KB/MB/GB, any
// case). A key of this type is from 1 to 2^62 bytes unless its field's
// tags say otherwise (min:"1024" max:"67108864").
type Size int64

func (s *Size) set(text string) error {
	n, err := parseSize(text)
	if err != nil {
		return err
	}
	*s = Size(n)
	return nil
}

// parseSize reads a byte count (see Size).
func parseSize(text string) (int64, error) {
	// Longest suffixes first, so that "KiB" is not read as "B".
	units := [...]struct {
		suffix string
		factor int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
		{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
		{"b", 1},
	}
	number, factor := strings.TrimSpace(text), int64(1)
	lower := strings.ToLower(number)
	for _, unit := range units {
		if strings.HasSuffix(lower, unit.suffix) {
			number, factor = strings.TrimSpace(number[:len(number)-len(unit.suffix)]), unit.factor
			break
		}
	}
	n, err := strconv.ParseInt(number, 10, 64)
	if err != nil || n < 0 {
		return 0, errors.New("want a number of bytes, or a size such as 64KiB, 10MiB or 1GB")
	}
	if n > (1<<62)/factor {
		return 0, errors.New("too large")
	}
	return n * factor, nil
}

// Address is a listen address, host:port or :port. An empty text leaves
// the setting as it is (its default).
type Address string

func (a *Address) set(text string) error {
	if text == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(text); err != nil {
		return errors.New("want host:port or :port")
	}
	*a = Address(text)
	return nil
}

// OptionalAddress is a listen address that can be turned off: host:port,
// :port, or "off" (or "") for no listener, kept as "".
type OptionalAddress string

// Off reports whether the listener is turned off.
func (a OptionalAddress) Off() bool { return a == "" }

func (a *OptionalAddress) set(text string) error {
	if text == "" || text == "off" {
		*a = ""
		return nil
	}
	if _, _, err := net.SplitHostPort(text); err != nil {
		return errors.New("want host:port or :port, or off")
	}
	*a = OptionalAddress(text)
	return nil
}

// Key is an HMAC key, written as Pushpin writes it: the secret itself,
// "base64:DATA", or "file:PATH" (one trailing newline dropped); see
// proxy.ParseKey. Empty means no key. Errors never repeat the text.
type Key []byte

func (k *Key) set(text string) error {
	key, err := proxy.ParseKey(text)
	if err != nil {
		return err
	}
	*k = key
	return nil
}

func (*Key) isSecret() {}

// setFlag parses a flag's text into v, with the flag's name in the error.
func setFlag(name, text string, v value) error {
	if err := v.set(text); err != nil {
		if _, ok := v.(secret); ok {
			return fmt.Errorf("--%s: %w", name, err)
		}
		return fmt.Errorf("--%s %q: %w", name, text, err)
	}
	return nil
}
