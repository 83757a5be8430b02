package publish

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gripd/gripd/grip"
	"github.com/rs/zerolog"
)

// DefaultMaxBodyBytes is Pushpin's limit on a publish body.
const DefaultMaxBodyBytes = 1_000_000

// DefaultMaxDeliveryLag is the delivery lag past which gripd (its
// configuration, control.max_delivery_lag) refuses publishes: twice what
// a fully loaded instance takes to write to 10,000 streams.
const DefaultMaxDeliveryLag = 2 * time.Second

// DefaultBodyTimeout is how long a publisher may take to send a publish
// body: publishers are backends near gripd, and 1 MB in 10 s is 100 kB/s.
const DefaultBodyTimeout = 10 * time.Second

// ControlConfig configures the HTTP control API.
type ControlConfig struct {
	// Auth is the authentication POST /publish/ requires. Default: none,
	// the API is open as Pushpin's is (keep it on a private listener then).
	Auth Auth
	// MaxBodyBytes is the largest publish body accepted; a bigger one is
	// answered 400 "Request body too large.". Default (0):
	// DefaultMaxBodyBytes, 1,000,000, as in Pushpin.
	MaxBodyBytes int64
	// BodyTimeout bounds reading a request body; a slower publisher is
	// answered 400 "Failed to read request body." Default (0):
	// DefaultBodyTimeout.
	BodyTimeout time.Duration
	// Lag, when set, reports how far delivery runs behind (the hub's
	// DeliveryLag). While it is over MaxLag a publish is refused with 503
	// and Retry-After, so that an instance offered more than it can write
	// pushes back on its publishers instead of queueing without bound.
	Lag    func() time.Duration
	MaxLag time.Duration
}

// ControlAPI is Pushpin's HTTP control API: GET / and POST /publish/.
// It answers a publish only after the broker has taken the items, so a 200
// means "accepted for delivery" and an error means "retry" (Pushpin
// answers first and delivers afterwards, so its 200 promises nothing).
//
// Where it differs from Pushpin on purpose: it can require auth; it
// accepts a chunked body without Content-Length (Pushpin answers 411,
// but a publisher that streams its body has done nothing wrong); it
// ignores a query string on /publish/ (Pushpin answers 404); and it does
// not send "Connection: close", so a publisher can keep its connection for
// the next publish. POST /recover (recover.go) answers after the broker
// took it, too, and needs the same auth.
type ControlAPI struct {
	cfg    ControlConfig
	broker Broker
	log    zerolog.Logger
	auth   atomic.Pointer[authCheck] // see SetAuth

	ok, badRequest, unauthorized, failed, behind atomic.Int64 // see PublishStats
	maxLag                                       atomic.Int64 // see SetMaxLag
	bodyTimeout                                  atomic.Int64 // see SetBodyTimeout
	lastBehindLog                                atomic.Int64 // unix ns of the last "behind" warning
}

// PublishStats counts the answers POST /publish/ has given, by outcome.
type PublishStats struct {
	OK           int64 // 200: the broker took the items
	BadRequest   int64 // 400: an unreadable, oversize or invalid body
	Unauthorized int64 // 401: missing or wrong credentials
	Failed       int64 // 503: the broker refused the items
	Behind       int64 // 503: delivery ran more than MaxLag behind (not counted in Failed)
}

// PublishStats reports how many publishes ended each way since start.
// A wrong method (405) is not a publish and is not counted.
func (c *ControlAPI) PublishStats() PublishStats {
	return PublishStats{OK: c.ok.Load(), BadRequest: c.badRequest.Load(),
		Unauthorized: c.unauthorized.Load(), Failed: c.failed.Load(), Behind: c.behind.Load()}
}

// NewControlAPI returns the control API publishing through broker.
func NewControlAPI(cfg ControlConfig, broker Broker, log zerolog.Logger) *ControlAPI {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	c := &ControlAPI{cfg: cfg, broker: broker, log: log}
	c.SetAuth(cfg.Auth)
	c.SetMaxLag(cfg.MaxLag)
	c.SetBodyTimeout(cfg.BodyTimeout)
	return c
}

// SetBodyTimeout changes ControlConfig.BodyTimeout (a reload); 0 or less
// means DefaultBodyTimeout.
func (c *ControlAPI) SetBodyTimeout(d time.Duration) {
	if d <= 0 {
		d = DefaultBodyTimeout
	}
	c.bodyTimeout.Store(int64(d))
}

// readBody reads a request body of at most max bytes within the body
// timeout. The connection's read deadline is set for it (where the
// ResponseWriter allows, as net/http's does) and cleared afterwards.
func (c *ControlAPI) readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(time.Duration(c.bodyTimeout.Load()))); err == nil {
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, max))
}

// SetMaxLag changes ControlConfig.MaxLag (a reload); 0 or less turns the
// push-back off.
func (c *ControlAPI) SetMaxLag(d time.Duration) { c.maxLag.Store(int64(d)) }

// tooFarBehind reports the delivery lag when it is over MaxLag.
func (c *ControlAPI) tooFarBehind() (time.Duration, bool) {
	limit := time.Duration(c.maxLag.Load())
	if limit <= 0 || c.cfg.Lag == nil {
		return 0, false
	}
	lag := c.cfg.Lag()
	return lag, lag > limit
}

// SetAuth replaces the credentials publishes need (a reload); requests
// under way finish with the old ones.
func (c *ControlAPI) SetAuth(a Auth) {
	check := &authCheck{Auth: a}
	if len(a.JWTKey) > 0 {
		// HS256 only, as the GRIP libraries sign. jwt checks exp (and nbf)
		// whenever the token carries them.
		opts := []jwt.ParserOption{jwt.WithValidMethods([]string{"HS256"})}
		if a.RequireExp {
			opts = append(opts, jwt.WithExpirationRequired())
		}
		if a.JWTIss != "" {
			opts = append(opts, jwt.WithIssuer(a.JWTIss))
		}
		check.jwtParser = jwt.NewParser(opts...)
	}
	c.auth.Store(check)
}

// authCheck is an Auth with the JWT parser made from it.
type authCheck struct {
	Auth
	jwtParser *jwt.Parser // nil when no JWT key is configured
}

// ServeHTTP answers one control API request, with Pushpin's status codes
// and texts.
func (c *ControlAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Pushpin negotiates before looking at the path, so even a 404 can be
	// a 406 first.
	asJSON, ok := negotiate(r.Header.Values("Accept"))
	if !ok {
		writeText(w, http.StatusNotAcceptable, "Not Acceptable. Supported formats are text/plain and application/json.\n")
		return
	}

	// Pushpin drops one trailing slash, so /publish and /publish/ are the
	// same; "/" stays "/".
	path := r.URL.Path
	if len(path) > 1 && strings.HasSuffix(path, "/") {
		path = path[:len(path)-1]
	}
	switch path {
	case "/":
		// Any method, as in Pushpin; the banner tells a prober what this is.
		writeText(w, http.StatusOK, "Pushpin API\n")
	case "/publish":
		c.servePublish(w, r, asJSON)
	case "/recover":
		c.serveRecover(w, r, asJSON)
	default:
		writeText(w, http.StatusNotFound, "Not Found\n")
	}
}

// servePublish handles /publish/: auth, method, body, parse, broker.
func (c *ControlAPI) servePublish(w http.ResponseWriter, r *http.Request, asJSON bool) {
	if c.fromBrowser(r) {
		c.refuseBrowser(w, r)
		return
	}
	if !c.authorized(r) {
		c.challenge(w)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeText(w, http.StatusMethodNotAllowed, "Method not allowed: "+r.Method+".\n")
		return
	}

	// Refuse a declared oversize body before reading any of it; a chunked
	// one is cut off by MaxBytesReader once it passes the limit.
	if r.ContentLength > c.cfg.MaxBodyBytes {
		c.badRequest.Add(1)
		writeText(w, http.StatusBadRequest, "Request body too large.\n")
		return
	}
	body, err := c.readBody(w, r, c.cfg.MaxBodyBytes)
	if err != nil {
		c.badRequest.Add(1)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeText(w, http.StatusBadRequest, "Request body too large.\n")
			return
		}
		c.log.Debug().Err(err).Msg("publish: reading the body failed")
		writeText(w, http.StatusBadRequest, "Failed to read request body.\n")
		return
	}

	// Content-Type is ignored, as in Pushpin: `curl -d` sends a form type.
	items, ignored, err := grip.ParsePublish(body)
	if err != nil {
		c.badRequest.Add(1)
		c.log.Debug().Str("error", err.Error()).Msg("publish refused")
		writeText(w, http.StatusBadRequest, err.Error()+"\n")
		return
	}
	if len(ignored) > 0 {
		c.log.Warn().Strs("formats", ignored).Msg("publish: unknown formats ignored")
	}

	if lag, behind := c.tooFarBehind(); behind && len(items) > 0 {
		c.refuseBehind(w, lag)
		return
	}
	if len(items) > 0 {
		if err := c.broker.Publish(r.Context(), items); err != nil {
			c.failed.Add(1)
			c.log.Error().Err(err).Int("items", len(items)).Msg("publish: broker failed")
			writeText(w, http.StatusServiceUnavailable, fmt.Sprintf("Publish failed: %v\n", err))
			return
		}
	}
	c.ok.Add(1)
	c.log.Debug().Int("items", len(items)).Strs("channels", channelsOf(items, 10)).Msg("published")

	if asJSON {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"message":"Published"}`+"\n")
		return
	}
	writeText(w, http.StatusOK, "Published\n")
}

// refuseBehind answers 503 with Retry-After to a publish that came while
// delivery runs too far behind: the publisher retries once this instance
// has caught up, and no accepted item waits longer than the limit allows.
// The warning is logged at most once a second.
func (c *ControlAPI) refuseBehind(w http.ResponseWriter, lag time.Duration) {
	c.behind.Add(1)
	now := time.Now().UnixNano()
	if last := c.lastBehindLog.Load(); now-last > int64(time.Second) && c.lastBehindLog.CompareAndSwap(last, now) {
		c.log.Warn().Dur("lag", lag).Dur("max_lag", time.Duration(c.maxLag.Load())).Int64("refused_total", c.behind.Load()).
			Msg("publish refused: delivery is behind; publishers are told to retry")
	}
	w.Header().Set("Retry-After", "1")
	writeText(w, http.StatusServiceUnavailable, fmt.Sprintf("Delivery is %s behind; retry later.\n", lag.Round(time.Millisecond)))
}

// fromBrowser reports whether r should be refused as a web page's request:
// the API is open (no credentials configured) and not told to allow them,
// and r carries what browsers add to requests a page makes: an Origin
// header (sent with every cross-origin request and every POST), or
// Sec-Fetch-Site other than "none" (a request the user did not type).
// Content-Type is not looked at: a page can send text/plain or a form
// without a preflight, but so does `curl -d`, which must keep working.
// Sec-Fetch-Mode is not either: Node's fetch, which GRIP libraries use,
// sends "Sec-Fetch-Mode: cors" (but neither Origin nor Sec-Fetch-Site).
func (c *ControlAPI) fromBrowser(r *http.Request) bool {
	a := c.auth.Load()
	if a.AllowBrowsers || a.jwtParser != nil || a.Username != "" || a.Password != "" {
		return false
	}
	if _, ok := r.Header["Origin"]; ok {
		return true
	}
	site := r.Header.Get("Sec-Fetch-Site")
	return site != "" && site != "none"
}

// refuseBrowser answers 403 to a web page's request (fromBrowser).
func (c *ControlAPI) refuseBrowser(w http.ResponseWriter, r *http.Request) {
	c.unauthorized.Add(1)
	c.log.Warn().Str("origin", r.Header.Get("Origin")).Str("sec_fetch_site", r.Header.Get("Sec-Fetch-Site")).
		Msg("control API request from a web page refused: the API has no auth (set control.auth, or control.auth.allow_browsers)")
	writeText(w, http.StatusForbidden, "Forbidden: requests from web pages are refused while the control API has no auth.\n")
}

// challenge answers 401. It names the scheme a publisher should use:
// Bearer when a JWT key is configured, else Basic.
func (c *ControlAPI) challenge(w http.ResponseWriter) {
	if c.auth.Load().jwtParser != nil {
		w.Header().Set("WWW-Authenticate", "Bearer")
	} else {
		w.Header().Set("WWW-Authenticate", `Basic realm="gripd", charset="UTF-8"`)
	}
	c.unauthorized.Add(1)
	writeText(w, http.StatusUnauthorized, "Unauthorized\n")
}

// authorized reports whether r carries credentials the config accepts.
// With no auth configured every request is authorized. With both a JWT key
// and Basic credentials configured, either is enough.
func (c *ControlAPI) authorized(r *http.Request) bool {
	a := c.auth.Load()
	basicOn := a.Username != "" || a.Password != ""
	if a.jwtParser == nil && !basicOn {
		return true
	}
	scheme, credentials, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case a.jwtParser != nil && strings.EqualFold(scheme, "Bearer"):
		_, err := a.jwtParser.Parse(strings.TrimSpace(credentials), func(*jwt.Token) (any, error) {
			return a.JWTKey, nil
		})
		if err != nil {
			// The error says what was wrong (expired, bad signature, iss);
			// it never holds the token itself.
			c.log.Debug().Err(err).Msg("publish: bearer token refused")
			return false
		}
		return true
	case basicOn && strings.EqualFold(scheme, "Basic"):
		user, pass, ok := r.BasicAuth()
		// Both comparisons always run, so timing does not tell which failed.
		userOK := subtle.ConstantTimeCompare([]byte(user), []byte(a.Username)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(pass), []byte(a.Password)) == 1
		return ok && userOK && passOK
	}
	return false
}

// negotiate picks the reply format from the Accept headers the way Pushpin
// does: every listed type it knows counts, the last one wins (Pushpin does
// not weigh q values), and no Accept header at all means text/plain. ok is
// false when Accept lists only types it cannot serve (406).
func negotiate(accept []string) (asJSON, ok bool) {
	if len(accept) == 0 {
		return false, true
	}
	for _, header := range accept {
		for _, entry := range strings.Split(header, ",") {
			mediaType, _, _ := strings.Cut(entry, ";")
			switch strings.ToLower(strings.TrimSpace(mediaType)) {
			case "text/plain", "text/*", "*/*", "*":
				asJSON, ok = false, true
			case "application/json", "application/*":
				asJSON, ok = true, true
			}
		}
	}
	return asJSON, ok
}

// writeText writes a text/plain reply. Pushpin's replies are text/plain
// without a charset; gripd sends the same.
func writeText(w http.ResponseWriter, code int, text string) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, text)
}

// channelsOf lists the distinct channels of items, at most limit of them, so
// that a log line stays short even for a large batch.
func channelsOf(items []grip.Item, limit int) []string {
	var out []string
	seen := map[string]bool{}
	for _, it := range items {
		if seen[it.Channel] {
			continue
		}
		if len(out) == limit {
			out = append(out, fmt.Sprintf("(and more, %d items in all)", len(items)))
			break
		}
		seen[it.Channel] = true
		out = append(out, it.Channel)
	}
	return out
}
