package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// requestIDHeader carries the id that ties a client request to its
// backend request(s) and its access-log line.
const requestIDHeader = "X-Request-Id"

// maxRequestIDLen is the longest client X-Request-Id gripd keeps.
const maxRequestIDLen = 128

// requestID returns the client's X-Request-Id when it sent exactly one
// and it is sane (1–128 visible ASCII characters), else a new id.
func requestID(r *http.Request) string {
	if vs := r.Header.Values(requestIDHeader); len(vs) == 1 && validRequestID(vs[0]) {
		return vs[0]
	}
	return newRequestID()
}

// validRequestID reports whether id is 1–128 visible ASCII characters:
// nothing that could split a log line or a header.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// newRequestID returns 16 random bytes in hex.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// setRequestID puts the request id on a header, replacing any other.
func setRequestID(h http.Header, id string) {
	if id != "" {
		h[requestIDHeader] = []string{id}
	}
}
