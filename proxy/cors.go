package proxy

import (
	"net/http"
	"slices"
	"strings"
)

// This file is auto cross-origin (Pushpin's aco route option, YAML
// auto_cross_origin): on such a route every response gripd sends gets the
// CORS headers a browser needs to let a page on another origin read it.
//
// It matches Pushpin 1.36 (src/core/cors.cpp, and black-box runs of the
// Debian package):
//   - only headers the response lacks are added; a backend's own
//     Access-Control-* headers win;
//   - it applies to every answer on the route: proxied responses, held
//     long-polls (timeout and published), stream holds, the instruction's
//     own response, and gripd's own errors (502, 504, 413...);
//   - a preflight (OPTIONS with Access-Control-Request-Method) is not
//     answered by the proxy: it goes to the backend like any request, and
//     its answer gets Allow-Methods and Allow-Headers echoing what the
//     browser asked for. The backend must answer OPTIONS with a 2xx.
//
// One deliberate addition: when Allow-Origin echoes the request's Origin,
// "Vary: Origin" is added, so a shared cache never serves one origin's
// answer to another.

// corsDefaultMethods is Allow-Methods when the request names none
// (Pushpin's list).
const corsDefaultMethods = "OPTIONS, HEAD, GET, POST, PUT, DELETE"

// corsMaxAge is Pushpin's Access-Control-Max-Age, in seconds.
const corsMaxAge = "3600"

// applyCORS adds the CORS headers that resp lacks, from the request
// headers req.
func applyCORS(req, resp http.Header) {
	if !hasHeader(resp, "Access-Control-Allow-Methods") {
		if method := req.Get("Access-Control-Request-Method"); method != "" {
			resp.Set("Access-Control-Allow-Methods", method)
		} else {
			resp.Set("Access-Control-Allow-Methods", corsDefaultMethods)
		}
	}
	if !hasHeader(resp, "Access-Control-Allow-Headers") {
		var asked []string
		for _, v := range req.Values("Access-Control-Request-Headers") {
			if v != "" {
				asked = append(asked, v)
			}
		}
		if len(asked) > 0 {
			resp.Set("Access-Control-Allow-Headers", strings.Join(asked, ", "))
		}
	}
	if !hasHeader(resp, "Access-Control-Expose-Headers") {
		if expose := corsExposable(resp); len(expose) > 0 {
			resp.Set("Access-Control-Expose-Headers", strings.Join(expose, ", "))
		}
	}
	if !hasHeader(resp, "Access-Control-Allow-Credentials") {
		resp.Set("Access-Control-Allow-Credentials", "true")
	}
	if !hasHeader(resp, "Access-Control-Allow-Origin") {
		origin := req.Get("Origin")
		if origin == "" {
			origin = "*"
		} else {
			resp.Add("Vary", "Origin")
		}
		resp.Set("Access-Control-Allow-Origin", origin)
	}
	if !hasHeader(resp, "Access-Control-Max-Age") {
		resp.Set("Access-Control-Max-Age", corsMaxAge)
	}
}

// corsExposable lists the response's header names a browser hides from
// scripts unless told otherwise: all but the CORS-safelisted ones,
// Access-Control-* and Grip-*. Pushpin lists them in the response's order;
// a Go header map has none, so they are sorted. Hop-by-hop headers are
// left out too (Pushpin never has them at this point; net/http may, e.g.
// Connection: close on a 413).
func corsExposable(resp http.Header) []string {
	var names []string
	for name := range resp {
		canonical := http.CanonicalHeaderKey(name)
		if corsSafelisted(canonical) || isHopByHop(canonical) || strings.HasPrefix(canonical, "Access-Control-") ||
			strings.HasPrefix(canonical, "Grip-") || slices.Contains(names, canonical) {
			continue
		}
		names = append(names, canonical)
	}
	slices.Sort(names)
	return names
}

// corsSafelisted reports Pushpin's "simple" response headers, which
// browsers always expose.
func corsSafelisted(name string) bool {
	switch name {
	case "Cache-Control", "Content-Language", "Content-Length", "Content-Type",
		"Expires", "Last-Modified", "Pragma":
		return true
	}
	return false
}

// hasHeader reports whether h has name with at least one value.
func hasHeader(h http.Header, name string) bool {
	return len(h.Values(name)) > 0
}

// isHopByHop reports the headers that describe one connection, not the
// response.
func isHopByHop(name string) bool {
	switch name {
	case "Connection", "Keep-Alive", "Transfer-Encoding", "Te", "Trailer", "Upgrade",
		"Proxy-Connection", "Proxy-Authenticate":
		return true
	}
	return false
}
