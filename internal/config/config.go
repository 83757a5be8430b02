package config

import (
	"errors"
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/proxy"
	"github.com/gripd/gripd/publish"
)

// Defaults that belong to the daemon alone (no library package falls back
// to them). The others are the library packages' own: see Default.
const (
	// DefaultListen is Pushpin's client port, so existing clients and
	// docs work unchanged.
	DefaultListen = ":7999"
	// DefaultControlListen is Pushpin's control API port, on loopback
	// because the API is open unless control.auth is set.
	DefaultControlListen = "127.0.0.1:5561"
	// DefaultAdminListen is next to the control API, on loopback, because
	// /metrics and /channels tell more than a stranger needs to know.
	DefaultAdminListen = "127.0.0.1:5563"
	// DefaultDrainDuration is long enough that clients reconnecting
	// elsewhere do not arrive in one burst, short enough for a rolling
	// deploy.
	DefaultDrainDuration = 30 * time.Second
	// DefaultControlMaxConns is far more publishers than a fleet has, few
	// enough descriptors that a flood of them cannot starve clients.
	DefaultControlMaxConns = 1024
	// DefaultAdminMaxConns is enough for scrapers, health checks and a
	// few status pages.
	DefaultAdminMaxConns = 64
)

// Config is everything gripd runs from: the YAML file (routes.yaml), with
// the flags laid over it (see Source). Each field's yaml tag is its key;
// its comment is its documentation (docs/configuration.md says the same
// for users, and a test keeps the two in step); its default is in
// Default; whether a reload applies it or needs a restart is in
// classify (reload.go).
type Config struct {
	// Listen is the address clients connect to (flag --listen). Default
	// DefaultListen. Restart.
	Listen Address `yaml:"listen"`
	// BackendTimeout is how long to wait for a backend's response headers
	// before answering 504. Default proxy.DefaultBackendTimeout (30s).
	BackendTimeout Duration `yaml:"backend_timeout"`
	// BackendDialTimeout is how long to wait for a connection to a backend
	// (and its TLS handshake) before trying the next one. Default
	// proxy.DefaultDialTimeout (5s). Restart.
	BackendDialTimeout Duration `yaml:"backend_dial_timeout"`
	// BackendMaxConns caps the connections to one backend; requests beyond
	// it wait for one to come free, so a burst of clients cannot exhaust
	// gripd's file descriptors. Default proxy.DefaultMaxConnsPerBackend
	// (4096).
	BackendMaxConns int `yaml:"backend_max_conns" min:"1"`
	// SubscriberQueue is how many published items may wait for one held
	// connection before it is dropped as too slow. Raise it when publishes
	// come in bursts; each slot costs 8 bytes per held connection. Applies
	// to new holds. Default handoff.DefaultQueueSize (100).
	SubscriberQueue int `yaml:"subscriber_queue" min:"1" max:"1048576"`
	// Control is the HTTP control API that backends publish to.
	Control Control `yaml:"control"`
	// Signing is the server-wide Grip-Sig issuer and key; route lines may
	// override them per route.
	Signing Signing `yaml:"signing"`
	// Routes is the route table, in file order (or the --route lines,
	// which replace the file's). Default none.
	Routes Routes `yaml:"routes"`
	// NATS joins this instance to a fleet. Default none: the instance
	// runs alone with the local broker. Restart.
	NATS NATS `yaml:"nats"`
	// Admin is the listener for health checks, metrics and the status
	// page.
	Admin Admin `yaml:"admin"`
	// Drain is how gripd leaves on SIGTERM or SIGINT.
	Drain Drain `yaml:"drain"`
	// Reload is when gripd rereads its file by itself.
	Reload Reload `yaml:"reload"`
	// Limits are the limits on clients and the bodies they send.
	Limits Limits `yaml:"limits"`
	// History keeps the latest items of each channel in NATS JetStream for
	// clients that reconnect. Default off. Restart.
	History History `yaml:"history"`
	// Links is where streams' next links (Grip-Link rel=next) may go.
	Links Links `yaml:"links"`
}

// Links is the links: section: where a stream's absolute next links may
// go besides the route table's hosts.
type Links struct {
	// AllowHosts are hosts, "host" (any port) or "host:port", that an
	// absolute next link may name outside the route table; such a link is
	// fetched as it is, unsigned. A link to a host neither here nor in the
	// route table is refused, logged and counted, and its stream ends.
	// Default none. Restart.
	AllowHosts []string `yaml:"allow_hosts"`
}

// Control is the control API (YAML control:).
type Control struct {
	// Listen is the control API's address (flag --control-listen).
	// Default DefaultControlListen. Restart.
	Listen Address `yaml:"listen"`
	// Auth, when set, makes the control API require a JWT bearer token or
	// HTTP Basic credentials. Default none (open).
	Auth ControlAuth `yaml:"auth"`
	// MaxDeliveryLag is how far delivery to held connections may run
	// behind before a publish is refused with 503 and Retry-After: 1 (the
	// publisher retries; what was accepted is not kept waiting longer). 0
	// turns the push-back off. Default publish.DefaultMaxDeliveryLag (2s).
	MaxDeliveryLag Duration `yaml:"max_delivery_lag"`
	// BodyTimeout is how long a publisher may take to send a request's
	// body once its headers are in (they have ReadHeaderTimeout's 10s); a
	// slower one is answered 400 and disconnected. Default
	// publish.DefaultBodyTimeout (10s). Live.
	BodyTimeout Duration `yaml:"body_timeout"`
	// MaxConns is the most connections open at once to the control API;
	// one more is answered 503 with Retry-After: 5. Default 0:
	// DefaultControlMaxConns (1024), lowered to an eighth of the
	// open-file limit when that is smaller (see ListenerMaxConns).
	// Restart.
	MaxConns int `yaml:"max_conns" min:"1"`
}

// ControlAuth is control.auth: who may publish.
type ControlAuth struct {
	// Key requires "Authorization: Bearer <JWT>" signed HS256 with it.
	Key Key `yaml:"key"`
	// Iss, with Key, requires the token's iss claim to equal it.
	Iss string `yaml:"iss"`
	// Username and Password require HTTP Basic credentials; set both.
	// With a key too, either credential is accepted.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// AllowBrowsers, while no credentials are set, lets requests from web
	// pages (an Origin header, or Sec-Fetch-Site other than none) through.
	// Default false: they are refused with 403.
	AllowBrowsers bool `yaml:"allow_browsers"`
	// RequireExp, with Key, refuses tokens without an exp claim. Default
	// false (Pushpin accepts them).
	RequireExp bool `yaml:"require_exp"`
}

// Publish is the control API's auth as package publish takes it.
func (a ControlAuth) Publish() publish.Auth {
	return publish.Auth{JWTKey: a.Key, JWTIss: a.Iss, Username: a.Username, Password: a.Password,
		AllowBrowsers: a.AllowBrowsers, RequireExp: a.RequireExp}
}

func (a *ControlAuth) check(node *yaml.Node) error {
	if a.Iss != "" && a.Key == nil {
		return fmt.Errorf("line %d: control.auth.iss needs control.auth.key", lineOf(node, "iss"))
	}
	if (a.Username == "") != (a.Password == "") {
		return fmt.Errorf("line %d: control.auth: username and password must be set together", nodeLine(node))
	}
	return nil
}

// Signing is how gripd signs the requests it forwards (Grip-Sig), so that
// backends can tell a request came through gripd (YAML signing:).
type Signing struct {
	// Iss is the JWT issuer claim (flag --sig-iss). Default
	// proxy.DefaultSigIss ("gripd").
	Iss string `yaml:"iss"`
	// Key is the HS256 key (flag --sig-key). Default none: requests are
	// forwarded without Grip-Sig.
	Key Key `yaml:"key"`
}

// Admin is the admin listener (YAML admin:): GET /healthz, /readyz,
// /metrics, /channels and the status page, apart from clients and the
// control API.
type Admin struct {
	// Listen is its address (flag --admin-listen); "off" turns it off.
	// Default DefaultAdminListen. Restart.
	Listen OptionalAddress `yaml:"listen"`
	// Hosts are the host names requests may use besides IP addresses and
	// localhost (a Host header naming anything else is answered 421, so a
	// web page cannot reach the listener through DNS rebinding); "*"
	// allows any. Default none. Restart.
	Hosts []string `yaml:"hosts"`
	// MaxConns is the most connections open at once to the admin
	// listener; one more is answered 503. Default 0: DefaultAdminMaxConns
	// (64), lowered to a sixteenth of the open-file limit when that is
	// smaller (see ListenerMaxConns). Restart.
	MaxConns int `yaml:"max_conns" min:"1"`
}

// Drain is how gripd leaves when told to stop (YAML drain:).
type Drain struct {
	// Duration is the window over which held connections (streams,
	// long-polls, WebSockets) are ended, evenly spread; gripd exits when
	// the last has gone, or at once on a second signal. 0 ends them all at
	// once (flag --drain-duration). Default DefaultDrainDuration. Live.
	Duration Duration `yaml:"duration" min:"0"`
}

// Reload is when gripd reads its file again on its own (YAML reload:).
// SIGHUP always reloads.
type Reload struct {
	// Watch checks the file every second and reloads it once it has
	// changed and then stayed the same for a second. Default true.
	// Restart.
	Watch bool `yaml:"watch"`
}

// Limits is the limits: section. The first four are the client
// listener's and need a restart; the others are checked per request and
// apply live (package proxy documents each in full: proxy.Limits,
// proxy.ListenerLimits).
type Limits struct {
	// MaxClientConns is the most client connections open at once, held
	// streams and WebSockets counted until they close; one more is
	// answered 503 with Retry-After: 5. Default 0: proxy.DefaultMaxConns
	// (50,000), lowered to half the open-file limit when that is smaller
	// (see ClientMaxConns).
	MaxClientConns int `yaml:"max_client_conns" min:"1"`
	// MaxHeaderBytes caps the request line and headers; larger: 431.
	// Default proxy.DefaultMaxHeaderBytes (64 KiB).
	MaxHeaderBytes Size `yaml:"max_header_bytes" min:"1024" max:"67108864"`
	// ReadHeaderTimeout is how long a client may take to send its request
	// headers. Default proxy.DefaultReadHeaderTimeout (10s).
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request. Default proxy.DefaultIdleTimeout (120s).
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxRequestBody is the largest request body passed to a backend;
	// larger: 413. Default proxy.DefaultMaxRequestBody (10 MiB).
	MaxRequestBody Size `yaml:"max_request_body"`
	// MaxInstructBody is the most gripd reads of a backend body to act on
	// an instruction; larger: 502. Default proxy.DefaultMaxInstructBody
	// (100,000 bytes, Pushpin's).
	MaxInstructBody Size `yaml:"max_instruct_body"`
	// MaxChannels is the most channels per hold or WebSocket. Default
	// proxy.DefaultMaxChannels (100).
	MaxChannels int `yaml:"max_channels" min:"1"`
	// MaxWSMessage is the largest message a WebSocket client may send;
	// larger closes it with 1009. Default proxy.DefaultMaxWSMessage
	// (1,000,000 bytes, Pushpin's).
	MaxWSMessage Size `yaml:"max_ws_message"`
	// ReadBodyTimeout is how long a client may take to send its whole
	// request body; still arriving then: the backend request is aborted,
	// the client gets 408 and is disconnected. Default
	// proxy.DefaultReadBodyTimeout (60s).
	ReadBodyTimeout Duration `yaml:"read_body_timeout"`
	// BackendQueueTimeout is how long a request waits for a connection to
	// its backend when backend_max_conns are all in use; then the next
	// backend is tried, and with none left: 503 with Retry-After: 1.
	// Default proxy.DefaultBackendQueueTimeout (5s).
	BackendQueueTimeout Duration `yaml:"backend_queue_timeout"`
	// MaxLinksWithoutHold is the most next links one stream follows in a
	// row whose answers hold nothing; one more ends the stream, logged and
	// counted. Default proxy.DefaultMaxLinksWithoutHold (1000).
	MaxLinksWithoutHold int `yaml:"max_links_without_hold" min:"1"`
	// LinkInterval paces the next links a stream follows in a row without
	// a hold: ten at once, then one per interval. Default
	// proxy.DefaultLinkInterval (100ms).
	LinkInterval Duration `yaml:"link_interval"`
	// WSMessageTimeout is how long a client WebSocket message may take
	// from its first frame to its last; longer closes the connection with
	// 1008. Default proxy.DefaultWSMessageTimeout (30s).
	WSMessageTimeout Duration `yaml:"ws_message_timeout"`
	// WSPartialBudget caps the memory of unfinished client WebSocket
	// messages, all connections together; a message that would pass it
	// closes its connection with 1009. Default
	// proxy.DefaultWSPartialBudget (64 MiB).
	WSPartialBudget Size `yaml:"ws_partial_budget"`
}

// Proxy is the request-time limits as package proxy takes them.
func (l Limits) Proxy() proxy.Limits {
	return proxy.Limits{
		MaxRequestBody:      int64(l.MaxRequestBody),
		MaxInstructBody:     int64(l.MaxInstructBody),
		MaxChannels:         l.MaxChannels,
		MaxWSMessage:        int64(l.MaxWSMessage),
		ReadBodyTimeout:     l.ReadBodyTimeout.Std(),
		BackendQueueTimeout: l.BackendQueueTimeout.Std(),
		MaxLinksWithoutHold: l.MaxLinksWithoutHold,
		LinkInterval:        l.LinkInterval.Std(),
		WSMessageTimeout:    l.WSMessageTimeout.Std(),
		WSPartialBudget:     int64(l.WSPartialBudget),
	}
}

// Listener is the client listener's limits as package proxy takes them,
// MaxConns resolved against nofile, the open-file limit (0 when unknown).
func (l Limits) Listener(nofile uint64) proxy.ListenerLimits {
	return proxy.ListenerLimits{
		MaxConns:          ClientMaxConns(l.MaxClientConns, nofile),
		MaxHeaderBytes:    int(l.MaxHeaderBytes),
		ReadHeaderTimeout: l.ReadHeaderTimeout.Std(),
		IdleTimeout:       l.IdleTimeout.Std(),
	}
}

// ClientMaxConns resolves limits.max_client_conns. A configured value is
// used as it is. Otherwise the default, proxy.DefaultMaxConns, is lowered
// to half the process's open-file limit (nofile; 0 when unknown) when that
// is smaller: every client connection holds a descriptor, and the other
// half is left for backend connections, NATS and logs, so a full house is
// answered 503 instead of failing in accept.
func ClientMaxConns(configured int, nofile uint64) int {
	return ListenerMaxConns(configured, proxy.DefaultMaxConns, nofile, clientShare)
}

// The shares of the open-file limit each listener's default connection
// cap is lowered to: half for clients, an eighth for the control API, a
// sixteenth for the admin listener. What is left, over five sixteenths,
// is for backend connections, NATS, files and logs; so no listener can
// take the descriptors another needs (accept failing with "too many open
// files").
const (
	clientShare  = 2
	controlShare = 8
	adminShare   = 16
	// natsShare is the embedded NATS server's client port's (see
	// EmbeddedNATSMaxConns).
	natsShare = 16
)

// ListenerMaxConns resolves a listener's connection cap: a configured
// value is used as it is; otherwise def, lowered to nofile/share (nofile
// is the open-file limit, 0 when unknown) when that is smaller.
func ListenerMaxConns(configured, def int, nofile uint64, share uint64) int {
	if configured > 0 {
		return configured
	}
	if nofile > 0 && nofile/share < uint64(def) {
		return max(int(nofile/share), 1)
	}
	return def
}

// ControlMaxConns resolves control.max_conns against nofile.
func (c Control) ControlMaxConns(nofile uint64) int {
	return ListenerMaxConns(c.MaxConns, DefaultControlMaxConns, nofile, controlShare)
}

// EmbeddedNATSMaxConns is the most client connections the embedded NATS
// server takes: nats-server's default (64K), lowered to a sixteenth of the
// open-file limit, so that connections to it (each has a descriptor while
// it logs in) cannot starve the other listeners.
func EmbeddedNATSMaxConns(nofile uint64) int {
	return ListenerMaxConns(0, server.DEFAULT_MAX_CONNECTIONS, nofile, natsShare)
}

// AdminMaxConns resolves admin.max_conns against nofile.
func (a Admin) AdminMaxConns(nofile uint64) int {
	return ListenerMaxConns(a.MaxConns, DefaultAdminMaxConns, nofile, adminShare)
}

// History is the history: section: the fleet keeps the latest items of
// each channel in NATS JetStream, so a client that reconnects to any
// instance with Last-Event-ID (or a hold whose channel prev-id is behind)
// first gets what it missed. It needs NATS with JetStream: an external
// server run with -js, or nats.embedded (which then runs JetStream).
type History struct {
	// Enabled turns history on. Default false.
	Enabled bool `yaml:"enabled"`
	// MaxAge is how long an item stays in history. Default
	// publish.DefaultHistoryMaxAge (1h).
	MaxAge Duration `yaml:"max_age"`
	// MaxItemsPerChannel is how many items of one channel history keeps,
	// the oldest going first; a client that missed more is left to its
	// backend's recovery. Default publish.DefaultHistoryMaxItemsPerChannel
	// (1000).
	MaxItemsPerChannel int `yaml:"max_items_per_channel" min:"1"`
	// DuplicateWindow is how long item ids are remembered: a publish
	// repeated within it (same channel and id) is stored and delivered
	// once. At most MaxAge. Default publish.DefaultHistoryDuplicateWindow
	// (2m), shortened to MaxAge when that is shorter.
	DuplicateWindow Duration `yaml:"duplicate_window"`
}

// Publish is the stream's shape as package publish takes it.
func (h History) Publish() publish.HistoryConfig {
	return publish.HistoryConfig{MaxAge: h.MaxAge.Std(), MaxItemsPerChannel: h.MaxItemsPerChannel, DuplicateWindow: h.DuplicateWindow.Std()}
}

func (h *History) check(node *yaml.Node) error {
	if h.DuplicateWindow <= h.MaxAge {
		return nil
	}
	if valueNode(node, "duplicate_window") == nil {
		h.DuplicateWindow = h.MaxAge // a short max_age shortens the default window
		return nil
	}
	return fmt.Errorf("line %d: history.duplicate_window %v: must not be longer than max_age (%v)",
		lineOf(node, "duplicate_window"), h.DuplicateWindow, h.MaxAge)
}

// Default returns the configuration used when no file is given, and the
// values a file's missing keys take. A default a library package falls
// back to when given zero is that package's constant, referred to here,
// so each default is written once.
func Default() *Config {
	return &Config{
		Listen:             DefaultListen,
		BackendTimeout:     Duration(proxy.DefaultBackendTimeout),
		BackendDialTimeout: Duration(proxy.DefaultDialTimeout),
		BackendMaxConns:    proxy.DefaultMaxConnsPerBackend,
		SubscriberQueue:    handoff.DefaultQueueSize,
		Control: Control{Listen: DefaultControlListen, MaxDeliveryLag: Duration(publish.DefaultMaxDeliveryLag),
			BodyTimeout: Duration(publish.DefaultBodyTimeout)},
		Signing: Signing{Iss: proxy.DefaultSigIss},
		Admin:   Admin{Listen: DefaultAdminListen},
		Drain:   Drain{Duration: Duration(DefaultDrainDuration)},
		Reload:  Reload{Watch: true},
		Limits: Limits{
			MaxHeaderBytes:      proxy.DefaultMaxHeaderBytes,
			ReadHeaderTimeout:   Duration(proxy.DefaultReadHeaderTimeout),
			IdleTimeout:         Duration(proxy.DefaultIdleTimeout),
			MaxRequestBody:      proxy.DefaultMaxRequestBody,
			MaxInstructBody:     proxy.DefaultMaxInstructBody,
			MaxChannels:         proxy.DefaultMaxChannels,
			MaxWSMessage:        proxy.DefaultMaxWSMessage,
			ReadBodyTimeout:     Duration(proxy.DefaultReadBodyTimeout),
			BackendQueueTimeout: Duration(proxy.DefaultBackendQueueTimeout),
			MaxLinksWithoutHold: proxy.DefaultMaxLinksWithoutHold,
			LinkInterval:        Duration(proxy.DefaultLinkInterval),
			WSMessageTimeout:    Duration(proxy.DefaultWSMessageTimeout),
			WSPartialBudget:     proxy.DefaultWSPartialBudget,
		},
		History: History{
			MaxAge:             Duration(publish.DefaultHistoryMaxAge),
			MaxItemsPerChannel: publish.DefaultHistoryMaxItemsPerChannel,
			DuplicateWindow:    Duration(publish.DefaultHistoryDuplicateWindow),
		},
	}
}

// errNoRoutes is the error of a configuration without a route.
var errNoRoutes = errors.New("no routes: give --config FILE or --route 'SPEC' (e.g. --route '* 127.0.0.1:8000')")
