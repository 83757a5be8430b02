package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gripd/gripd/proxy"
)

// fileLimits mirrors the limits: section. Sizes are strings so that both
// 1048576 and 1MiB can be written; an empty size or duration, or a
// missing key, keeps the default.
type fileLimits struct {
	MaxClientConns    *int   `yaml:"max_client_conns"`
	MaxHeaderBytes    string `yaml:"max_header_bytes"`
	ReadHeaderTimeout string `yaml:"read_header_timeout"`
	IdleTimeout       string `yaml:"idle_timeout"`
	MaxRequestBody    string `yaml:"max_request_body"`
	MaxInstructBody   string `yaml:"max_instruct_body"`
	MaxChannels       *int   `yaml:"max_channels"`
	MaxWSMessage      string `yaml:"max_ws_message"`
}

// maxHeaderBytesCeiling keeps limits.max_header_bytes sane: a request head
// gripd holds in memory per connection.
const maxHeaderBytesCeiling = 64 << 20

// apply sets the limits from the section. node is the limits: mapping,
// or nil when the file has none.
func (f *fileLimits) apply(limits *proxy.Limits, listener *proxy.ListenerLimits, node *yaml.Node) error {
	fail := func(key, format string, args ...any) error {
		return fmt.Errorf("line %d: limits.%s %s", lineOf(node, key), key, fmt.Sprintf(format, args...))
	}
	if f.MaxClientConns != nil {
		if *f.MaxClientConns < 1 {
			return fail("max_client_conns", "%d: must be at least 1", *f.MaxClientConns)
		}
		listener.MaxConns = *f.MaxClientConns
	}
	if f.MaxChannels != nil {
		if *f.MaxChannels < 1 {
			return fail("max_channels", "%d: must be at least 1", *f.MaxChannels)
		}
		limits.MaxChannels = *f.MaxChannels
	}

	sizes := []struct {
		key   string
		value string
		min   int64
		max   int64
		set   func(int64)
	}{
		{"max_header_bytes", f.MaxHeaderBytes, 1 << 10, maxHeaderBytesCeiling, func(n int64) { listener.MaxHeaderBytes = int(n) }},
		{"max_request_body", f.MaxRequestBody, 1, 1 << 62, func(n int64) { limits.MaxRequestBody = n }},
		{"max_instruct_body", f.MaxInstructBody, 1, 1 << 62, func(n int64) { limits.MaxInstructBody = n }},
		{"max_ws_message", f.MaxWSMessage, 1, 1 << 62, func(n int64) { limits.MaxWSMessage = n }},
	}
	for _, s := range sizes {
		if s.value == "" {
			continue
		}
		n, err := parseSize(s.value)
		if err != nil {
			return fail(s.key, "%q: %v", s.value, err)
		}
		if n < s.min || n > s.max {
			return fail(s.key, "%q: must be from %d to %d bytes", s.value, s.min, s.max)
		}
		s.set(n)
	}

	durations := []struct {
		key   string
		value string
		set   func(time.Duration)
	}{
		{"read_header_timeout", f.ReadHeaderTimeout, func(d time.Duration) { listener.ReadHeaderTimeout = d }},
		{"idle_timeout", f.IdleTimeout, func(d time.Duration) { listener.IdleTimeout = d }},
	}
	for _, d := range durations {
		if d.value == "" {
			continue
		}
		duration, err := positiveDuration(d.value)
		if err != nil {
			return fail(d.key, "%q: %v", d.value, err)
		}
		d.set(duration)
	}
	return nil
}

// parseSize reads a byte count: a whole number ("1048576"), or one with a
// unit ("64KiB", "10 MiB", "1GB"; binary KiB/MiB/GiB or decimal KB/MB/GB,
// any case).
func parseSize(text string) (int64, error) {
	// Longest suffixes first, so that "KiB" is not read as "B".
	units := []struct {
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
		return 0, fmt.Errorf("want a number of bytes, or a size such as 64KiB, 10MiB or 1GB")
	}
	if n > (1<<62)/factor {
		return 0, fmt.Errorf("too large")
	}
	return n * factor, nil
}

// positiveDuration reads a Go duration that must be more than zero.
func positiveDuration(text string) (time.Duration, error) {
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 10s or 2m")
	}
	if d <= 0 {
		return 0, fmt.Errorf("must be more than zero")
	}
	return d, nil
}

// clientMaxConns resolves limits.max_client_conns. A configured value is
// used as it is. Otherwise the default, proxy.DefaultMaxConns, is lowered
// to half the process's open-file limit (nofile; 0 when unknown) when that
// is smaller: every client connection holds a descriptor, and the other
// half is left for backend connections, NATS and logs, so a full house is
// answered 503 instead of failing in accept.
func clientMaxConns(configured int, nofile uint64) int {
	if configured > 0 {
		return configured
	}
	if nofile > 0 && nofile/2 < proxy.DefaultMaxConns {
		return max(int(nofile/2), 1)
	}
	return proxy.DefaultMaxConns
}
