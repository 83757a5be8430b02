package proxy

import (
	"net"
	"net/http"
	"strings"
)

// One forwarding policy for every path to a backend: plain HTTP (and a
// no_grip upgrade), WebSocket-over-HTTP and WebSocket passthrough. A
// backend learns the client's address, the Host it asked for and its
// scheme the same way whichever path the request took, and a client
// cannot pass itself off as another through a path that forgot to say.

// setForwardedHeaders sets the X-Forwarded-* headers of h, the header of
// a backend request made for client request r: X-Forwarded-For is what the
// client sent with the address it connected from appended (the header of
// a proxy chain), X-Forwarded-Host and X-Forwarded-Proto are the Host the
// client asked for and its scheme, whatever the client sent. It is
// httputil.ProxyRequest.SetXForwarded, for requests that are not made
// through the reverse proxy.
func setForwardedHeaders(h http.Header, r *http.Request) {
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h.Set("X-Forwarded-For", ip)
	} else {
		h.Del("X-Forwarded-For")
	}
	h.Set("X-Forwarded-Host", r.Host)
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	h.Set("X-Forwarded-Proto", proto)
}

// stripClientMetaHeaders removes the Meta-* headers a client sent, and
// their Meta_* spellings: over WebSocket-over-HTTP they carry the
// connection's meta, which is the backend's to set (Set-Meta-*), and
// CGI-style backends read both spellings as HTTP_META_*.
func stripClientMetaHeaders(h http.Header) {
	for k := range h {
		if len(k) >= 5 && (strings.EqualFold(k[:5], "meta-") || strings.EqualFold(k[:5], "meta_")) {
			delete(h, k)
		}
	}
}
