package proxy

import (
	"net/url"
	"strings"
)

// A request path is decided once, before the route is chosen: the route
// is matched on the normalized path, and the normalized path is what the
// backend gets, so a path_prefix route cannot be left with dot segments
// (/public/../secret.txt). Backends disagree on what an encoded slash or
// backslash, or a ";" after dots, means, so a path whose dot segments
// depend on that is refused with 400 instead of guessed at.

// normalizePath resolves the dot segments of the escaped request path p
// (RFC 3986, section 5.2.4): a segment that decodes to "." is dropped, one
// that decodes to ".." (%2e%2e too) drops the segment before it, and never
// climbs above the root. Every other segment is kept exactly as the client
// escaped it. ok is false for an ambiguous path: a segment that is not
// valid percent-encoding, or that holds a dot segment once an encoded
// slash, a backslash or a ";" parameter is read as a separator ("..%2f",
// "%2e%2e%5c", "..;"). A path that does not start with "/" (the "*" of
// OPTIONS *) is returned as it is.
func normalizePath(p string) (norm string, ok bool) {
	if !strings.HasPrefix(p, "/") {
		return p, true
	}
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, seg := range segs {
		last := i == len(segs)-1
		dec, err := url.PathUnescape(seg)
		if err != nil || hidesDotSegment(dec) {
			return "", false
		}
		switch dec {
		case ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
			continue
		}
		if last {
			out = append(out, "") // "/a/b/.." is "/a/": the directory
		}
	}
	return "/" + strings.Join(out, "/"), true
}

// hidesDotSegment reports whether a decoded segment that is not itself a
// dot segment holds one when "/" (from %2f), "\" or ";" is read as a
// separator, as some backends do.
func hidesDotSegment(dec string) bool {
	if dec == "." || dec == ".." || !strings.ContainsAny(dec, `/\;`) {
		return false
	}
	for _, part := range strings.FieldsFunc(dec, func(r rune) bool { return r == '/' || r == '\\' }) {
		part, _, _ = strings.Cut(part, ";")
		if part == "." || part == ".." {
			return true
		}
	}
	return false
}
