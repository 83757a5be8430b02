package admin

import (
	"embed"
	"net/http"
)

// statusAssets is the live status page the admin listener serves at GET /:
// plain HTML, CSS and JavaScript drawing SVG charts, embedded in the
// binary (no CDN, no build step). The page reads GET /status/events
// (statusevents.go).
//
//go:embed status/index.html status/status.js status/status.css
var statusAssets embed.FS

// statusPageCSP lets the page load only its own files and open only its
// own event stream: channel names are shown as text, and even a name
// crafted as markup could load nothing.
const statusPageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// serveStatusAsset returns a handler for one embedded file.
func serveStatusAsset(name, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data, err := statusAssets.ReadFile("status/" + name)
		if err != nil { // only if the embed list above and the routes disagree
			http.Error(w, "status page asset missing: "+name, http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", contentType)
		// The files change with gripd's version: the browser asks again.
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", statusPageCSP)
		_, _ = w.Write(data)
	}
}
