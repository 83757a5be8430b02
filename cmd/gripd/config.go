package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gripd/gripd/proxy"
	"github.com/gripd/gripd/publish"
)

// Config is everything gripd runs from, read from a YAML file (every key
// is described in routes.yaml.example at the repository root).
type Config struct {
	// Listen is the address clients connect to. Default ":7999", Pushpin's
	// port, so existing clients and docs work unchanged.
	Listen string
	// BackendTimeout is how long to wait for a backend's response headers
	// (YAML backend_timeout, e.g. "30s"). Default 30s.
	BackendTimeout time.Duration
	// BackendDialTimeout is how long to wait for a connection to a backend
	// (and its TLS handshake) before trying the next one (YAML
	// backend_dial_timeout). Default 5s.
	BackendDialTimeout time.Duration
	// BackendMaxConns caps the connections to one backend (YAML
	// backend_max_conns); requests beyond it wait for one to come free, so
	// a burst of clients cannot exhaust gripd's file descriptors. Default
	// 4096.
	BackendMaxConns int
	// SubscriberQueue is how many published items may wait for one held
	// connection before it is dropped as too slow (YAML subscriber_queue).
	// Raise it when publishes come in bursts (a fleet catching up after a
	// stall); each slot costs 8 bytes per held connection. Default 100.
	SubscriberQueue int
	// Control configures the HTTP control (publish) API.
	Control ControlConfig
	// Signing is the server-wide Grip-Sig issuer and key; route lines may
	// override them per route.
	Signing SigningConfig
	// Routes is the route table, in file order. Default none: the file may
	// leave routes out when --route flags provide them.
	Routes []proxy.Route
	// NATS joins this instance to a fleet (YAML nats:). Default: none, the
	// instance runs alone.
	NATS NATSSection
	// Admin is the listener for health checks and metrics (YAML admin:).
	Admin AdminConfig
	// Drain is how gripd leaves on SIGTERM/SIGINT (YAML drain:).
	Drain DrainConfig
	// Reload is when gripd rereads this file by itself (YAML reload:).
	Reload ReloadConfig
	// Limits are the limits checked at request time (YAML limits:); a
	// running proxy takes new ones through proxy.Server.SetLimits.
	Limits proxy.Limits
	// ListenerLimits are the client listener's limits (YAML limits:),
	// applied when it starts. MaxConns 0 means the default, resolved at
	// start by clientMaxConns.
	ListenerLimits proxy.ListenerLimits
	// History keeps the latest items of each channel in NATS JetStream for
	// clients that reconnect (YAML history:). Default off.
	History HistoryConfig
}

// ControlConfig configures the control API that backends publish to.
type ControlConfig struct {
	// Listen is the control API's address. Default "127.0.0.1:5561"
	// (Pushpin's), on loopback because Pushpin's API has no auth.
	Listen string
	// Auth, when set, makes the control API require a JWT bearer token or
	// HTTP Basic credentials. Default none (open).
	Auth publish.Auth
}

// SigningConfig is how gripd signs the requests it forwards (Grip-Sig),
// so that backends can tell a request came through gripd.
type SigningConfig struct {
	// Iss is the JWT issuer claim. Default "gripd".
	Iss string
	// Key is the HS256 key (YAML: a literal, base64:..., or file:PATH).
	// Default none: requests are forwarded without Grip-Sig.
	Key []byte
}

// DefaultConfig returns the configuration used when no file is given, and
// the values a file's missing keys take.
func DefaultConfig() *Config {
	listener := proxy.ListenerLimits{}.WithDefaults()
	listener.MaxConns = 0 // depends on the open-file limit: see clientMaxConns
	return &Config{
		Listen:             ":7999",
		BackendTimeout:     30 * time.Second,
		BackendDialTimeout: 5 * time.Second,
		BackendMaxConns:    4096,
		SubscriberQueue:    100,
		Control:            ControlConfig{Listen: "127.0.0.1:5561"},
		Signing:            SigningConfig{Iss: "gripd"},
		Admin:              AdminConfig{Listen: DefaultAdminListen},
		Limits:             proxy.DefaultLimits(),
		ListenerLimits:     listener,
		Drain:              DrainConfig{Duration: DefaultDrainDuration},
		Reload:             ReloadConfig{Watch: true},
		History:            defaultHistory(),
	}
}

// LoadConfig reads and checks the YAML config file at path. Errors start
// with the path and give the line, like a compiler's.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig checks a YAML config and builds it. Unknown keys are errors
// (a misspelt key silently ignored is a misconfiguration nobody notices),
// and so is anything the route table would reject, so that a bad file
// fails at load time with the line to fix rather than at the first request.
func ParseConfig(data []byte) (*Config, error) {
	var file fileConfig
	decoder := yaml.NewDecoder(bytes.NewReader(data))
	decoder.KnownFields(true)
	if err := decoder.Decode(&file); err != nil && !errors.Is(err, io.EOF) {
		return nil, describeYAMLError(err)
	}
	var extra yaml.Node
	switch err := decoder.Decode(&extra); {
	case err == nil:
		return nil, fmt.Errorf("line %d: the file must hold one YAML document", extra.Line)
	case !errors.Is(err, io.EOF):
		return nil, describeYAMLError(err)
	}
	// A second pass keeps the node tree, whose line numbers point the
	// checks below at the right place in the file.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, describeYAMLError(err)
	}
	root := documentRoot(&doc)

	cfg := DefaultConfig()
	if err := file.applyTop(cfg, root); err != nil {
		return nil, err
	}
	if err := file.Control.apply(&cfg.Control, valueNode(root, "control")); err != nil {
		return nil, err
	}
	if err := file.Signing.apply(&cfg.Signing, valueNode(root, "signing")); err != nil {
		return nil, err
	}
	if err := file.NATS.apply(&cfg.NATS, valueNode(root, "nats")); err != nil {
		return nil, err
	}
	if err := file.Admin.apply(&cfg.Admin, valueNode(root, "admin")); err != nil {
		return nil, err
	}
	if err := file.Drain.apply(&cfg.Drain, valueNode(root, "drain")); err != nil {
		return nil, err
	}
	if err := file.Reload.apply(&cfg.Reload, valueNode(root, "reload")); err != nil {
		return nil, err
	}
	if err := file.Limits.apply(&cfg.Limits, &cfg.ListenerLimits, valueNode(root, "limits")); err != nil {
		return nil, err
	}
	if err := file.History.apply(&cfg.History, valueNode(root, "history")); err != nil {
		return nil, err
	}

	routeNodes := valueNode(root, "routes")
	for i, fr := range file.Routes {
		node := sequenceItem(routeNodes, i)
		route, err := fr.build(node)
		if err != nil {
			return nil, err
		}
		cfg.Routes = append(cfg.Routes, route)
	}
	// The table checks what involves several routes: duplicate ids, and
	// two routes for the same host and path prefix.
	if _, err := proxy.NewTable(cfg.Routes); err != nil {
		line := nodeLine(sequenceItem(routeNodes, firstBadRoute(cfg.Routes)))
		return nil, fmt.Errorf("line %d: %w", line, err)
	}
	return cfg, nil
}

// firstBadRoute returns the index of the first route that the route table
// rejects in the company of the routes before it: the one whose line an
// error about duplicates should point at. It only runs when building the
// whole table already failed.
func firstBadRoute(routes []proxy.Route) int {
	for i := range routes {
		if _, err := proxy.NewTable(routes[:i+1]); err != nil {
			return i
		}
	}
	return 0
}

// fileConfig mirrors the YAML file. An empty or missing string key takes
// its default.
type fileConfig struct {
	Listen             string      `yaml:"listen"`
	BackendTimeout     string      `yaml:"backend_timeout"`
	BackendDialTimeout string      `yaml:"backend_dial_timeout"`
	BackendMaxConns    *int        `yaml:"backend_max_conns"`
	SubscriberQueue    *int        `yaml:"subscriber_queue"`
	Control            fileControl `yaml:"control"`
	Signing            fileSigning `yaml:"signing"`
	Routes             []fileRoute `yaml:"routes"`
	NATS               fileNATS    `yaml:"nats"`
	Admin              fileAdmin   `yaml:"admin"`
	Limits             fileLimits  `yaml:"limits"`
	Drain              fileDrain   `yaml:"drain"`
	Reload             fileReload  `yaml:"reload"`
	History            fileHistory `yaml:"history"`
}

// fileControl mirrors the control: section.
type fileControl struct {
	Listen string   `yaml:"listen"`
	Auth   fileAuth `yaml:"auth"`
}

// fileAuth mirrors control.auth.
type fileAuth struct {
	Key      string `yaml:"key"`
	Iss      string `yaml:"iss"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// fileSigning mirrors the signing: section.
type fileSigning struct {
	Iss string `yaml:"iss"`
	Key string `yaml:"key"`
}

// fileRoute mirrors one entry of routes:.
type fileRoute struct {
	ID        string      `yaml:"id"`
	Match     fileMatch   `yaml:"match"`
	Rewrite   fileRewrite `yaml:"rewrite"`
	Backends  []string    `yaml:"backends"`
	Balance   string      `yaml:"balance"`
	NoGrip    bool        `yaml:"no_grip"`
	Insecure  bool        `yaml:"insecure"`
	Host      string      `yaml:"host"`
	WebSocket string      `yaml:"websocket"`
	Headers   fileHeaders `yaml:"headers"`
	// AutoCrossOrigin is Pushpin's aco.
	AutoCrossOrigin bool `yaml:"auto_cross_origin"`
}

// fileMatch mirrors a route's match:.
type fileMatch struct {
	Host       string `yaml:"host"`
	PathPrefix string `yaml:"path_prefix"`
}

// fileRewrite mirrors a route's rewrite:. ReplacePrefix is a pointer
// because an empty replacement (drop the prefix) is a real setting.
type fileRewrite struct {
	StripPrefix   bool    `yaml:"strip_prefix"`
	ReplacePrefix *string `yaml:"replace_prefix"`
}

// fileHeaders mirrors a route's headers:.
type fileHeaders struct {
	Set map[string]string `yaml:"set"`
}

// applyTop sets the top-level scalar keys.
func (f *fileConfig) applyTop(cfg *Config, root *yaml.Node) error {
	if f.Listen != "" {
		if err := checkListenAddress(f.Listen); err != nil {
			return fmt.Errorf("line %d: listen: %w", lineOf(root, "listen"), err)
		}
		cfg.Listen = f.Listen
	}
	if f.BackendTimeout != "" {
		timeout, err := time.ParseDuration(f.BackendTimeout)
		if err != nil {
			return fmt.Errorf("line %d: backend_timeout %q: want a duration such as 30s or 1m30s",
				lineOf(root, "backend_timeout"), f.BackendTimeout)
		}
		if timeout <= 0 {
			return fmt.Errorf("line %d: backend_timeout %q: must be more than zero",
				lineOf(root, "backend_timeout"), f.BackendTimeout)
		}
		cfg.BackendTimeout = timeout
	}
	if f.BackendDialTimeout != "" {
		timeout, err := positiveDuration(f.BackendDialTimeout)
		if err != nil {
			return fmt.Errorf("line %d: backend_dial_timeout %q: %v",
				lineOf(root, "backend_dial_timeout"), f.BackendDialTimeout, err)
		}
		cfg.BackendDialTimeout = timeout
	}
	if f.BackendMaxConns != nil {
		if *f.BackendMaxConns < 1 {
			return fmt.Errorf("line %d: backend_max_conns %d: must be at least 1",
				lineOf(root, "backend_max_conns"), *f.BackendMaxConns)
		}
		cfg.BackendMaxConns = *f.BackendMaxConns
	}
	if f.SubscriberQueue != nil {
		if *f.SubscriberQueue < 1 || *f.SubscriberQueue > 1<<20 {
			return fmt.Errorf("line %d: subscriber_queue %d: must be from 1 to 1048576",
				lineOf(root, "subscriber_queue"), *f.SubscriberQueue)
		}
		cfg.SubscriberQueue = *f.SubscriberQueue
	}
	return nil
}

// apply sets the control API's settings. node is the control: mapping,
// or nil when the file has none.
func (f *fileControl) apply(control *ControlConfig, node *yaml.Node) error {
	if f.Listen != "" {
		if err := checkListenAddress(f.Listen); err != nil {
			return fmt.Errorf("line %d: control.listen: %w", lineOf(node, "listen"), err)
		}
		control.Listen = f.Listen
	}

	authNode := valueNode(node, "auth")
	key, err := proxy.ParseKey(f.Auth.Key)
	if err != nil {
		return fmt.Errorf("line %d: control.auth.key: %w", lineOf(authNode, "key"), err)
	}
	if f.Auth.Iss != "" && key == nil {
		return fmt.Errorf("line %d: control.auth.iss needs control.auth.key", lineOf(authNode, "iss"))
	}
	if (f.Auth.Username == "") != (f.Auth.Password == "") {
		return fmt.Errorf("line %d: control.auth: username and password must be set together", nodeLine(authNode))
	}
	control.Auth = publish.Auth{
		JWTKey:   key,
		JWTIss:   f.Auth.Iss,
		Username: f.Auth.Username,
		Password: f.Auth.Password,
	}
	return nil
}

// apply sets the Grip-Sig settings. node is the signing: mapping, or nil.
func (f *fileSigning) apply(signing *SigningConfig, node *yaml.Node) error {
	if f.Iss != "" {
		signing.Iss = f.Iss
	}
	key, err := proxy.ParseKey(f.Key)
	if err != nil {
		return fmt.Errorf("line %d: signing.key: %w", lineOf(node, "key"), err)
	}
	signing.Key = key
	return nil
}

// build turns one routes: entry into a proxy.Route. node is the entry's
// mapping, for line numbers. Errors name the route and its line.
func (f *fileRoute) build(node *yaml.Node) (proxy.Route, error) {
	route := proxy.Route{
		ID:              f.ID,
		Host:            f.Match.Host,
		PathPrefix:      f.Match.PathPrefix,
		NoGrip:          f.NoGrip,
		AutoCrossOrigin: f.AutoCrossOrigin,
	}
	if route.ID == "" {
		route.ID = proxy.DefaultRouteID(route.Host, route.PathPrefix)
	}
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("line %d: route %q: %s", line, route.ID, fmt.Sprintf(format, args...))
	}

	rewriteLine := lineOf(node, "rewrite")
	if f.Rewrite.StripPrefix && f.Rewrite.ReplacePrefix != nil {
		return proxy.Route{}, fail(rewriteLine, "rewrite: strip_prefix and replace_prefix cannot both be set")
	}
	if f.Rewrite.StripPrefix {
		if route.PathPrefix == "" {
			return proxy.Route{}, fail(rewriteLine, "rewrite.strip_prefix needs match.path_prefix")
		}
		route.StripChars = len(route.PathPrefix)
	}
	if f.Rewrite.ReplacePrefix != nil {
		replacement := *f.Rewrite.ReplacePrefix
		route.ReplacePrefix = &replacement
	}

	switch f.Balance {
	case "", string(proxy.BalanceFailover):
		route.Balance = proxy.BalanceFailover
	case string(proxy.BalanceRoundRobin):
		route.Balance = proxy.BalanceRoundRobin
	default:
		return proxy.Route{}, fail(lineOf(node, "balance"), "balance %q: want %s or %s",
			f.Balance, proxy.BalanceFailover, proxy.BalanceRoundRobin)
	}

	overHTTP := false
	switch f.WebSocket {
	case "":
	case "over_http":
		overHTTP = true
	default:
		return proxy.Route{}, fail(lineOf(node, "websocket"), "websocket %q: the only value is over_http", f.WebSocket)
	}

	if len(f.Headers.Set) > 0 {
		route.SetHeaders = make(http.Header, len(f.Headers.Set))
		for name, value := range f.Headers.Set {
			route.SetHeaders.Set(name, value)
		}
	}

	if len(f.Backends) == 0 {
		return proxy.Route{}, fail(nodeLine(node), "backends: at least one backend is required")
	}
	backendNodes := valueNode(node, "backends")
	for i, raw := range f.Backends {
		u, err := parseBackendURL(raw)
		if err != nil {
			return proxy.Route{}, fail(nodeLine(sequenceItem(backendNodes, i)), "backend %q: %v", raw, err)
		}
		route.Backends = append(route.Backends, proxy.Backend{
			URL:        u,
			Insecure:   f.Insecure,
			HostHeader: f.Host,
			OverHTTP:   overHTTP,
		})
	}

	// What is left to check (host and path syntax, header names, the Host
	// header) is the route table's rule; run it here for the line number.
	if err := route.Validate(); err != nil {
		return proxy.Route{}, fail(nodeLine(node), "%v", err)
	}
	return route, nil
}

// parseBackendURL checks a backend URL and returns it with an explicit
// port (80 for http, 443 for https when none is given), the form the
// proxy dials.
func parseBackendURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("want http://host[:port] or https://host[:port]")
	}
	var defaultPort string
	switch u.Scheme {
	case "http":
		defaultPort = "80"
	case "https":
		defaultPort = "443"
	default:
		return nil, errors.New("want http://host[:port] or https://host[:port]")
	}
	if u.Hostname() == "" {
		return nil, errors.New("missing host")
	}
	if u.User != nil {
		return nil, errors.New("credentials in a backend URL are not supported (use headers.set)")
	}
	if u.Path != "" && u.Path != "/" {
		return nil, errors.New("a backend URL has no path (use rewrite.replace_prefix)")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, errors.New("a backend URL has no query or fragment")
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return nil, fmt.Errorf("bad port %q (want 1-65535)", port)
	}
	return &url.URL{Scheme: u.Scheme, Host: net.JoinHostPort(u.Hostname(), port)}, nil
}

// checkListenAddress rejects a listen address that is not host:port, so
// the mistake is reported with its line rather than at startup.
func checkListenAddress(address string) error {
	if _, _, err := net.SplitHostPort(address); err != nil {
		return fmt.Errorf("%q: want host:port or :port", address)
	}
	return nil
}

// describeYAMLError makes yaml.v3's errors read in terms of the file:
// "line 5: field foo not found in type main.fileRoute" becomes
// `line 5: unknown key "foo" in a route`, and "cannot unmarshal !!seq into
// main.fileConfig" names the section instead of a Go type. Syntax errors
// already give the line and pass through unchanged.
func describeYAMLError(err error) error {
	var typeErr *yaml.TypeError
	if !errors.As(err, &typeErr) {
		return err
	}
	messages := make([]string, len(typeErr.Errors))
	for i, message := range typeErr.Errors {
		messages[i] = describeTypeError(message)
	}
	return errors.New(strings.Join(messages, "; "))
}

// describeTypeError rewrites one of yaml.v3's messages that name a Go type.
func describeTypeError(message string) string {
	line, rest, ok := strings.Cut(message, ": ")
	if !ok {
		return message
	}
	// "field foo not found in type main.fileRoute"
	if field, ok := strings.CutPrefix(rest, "field "); ok {
		if key, typeName, ok := strings.Cut(field, " not found in type "); ok {
			return fmt.Sprintf("%s: unknown key %q in %s", line, key, sectionOf(typeName))
		}
	}
	// "cannot unmarshal !!seq into main.fileConfig"
	if value, typeName, ok := strings.Cut(rest, " into "); ok && strings.HasPrefix(typeName, "main.") {
		return fmt.Sprintf("%s: %s where %s (a mapping) belongs", line, value, sectionOf(typeName))
	}
	return message
}

// sectionOf names the part of the file that a decoding type stands for.
func sectionOf(typeName string) string {
	switch typeName {
	case fmt.Sprintf("%T", fileConfig{}):
		return "the top level"
	case fmt.Sprintf("%T", fileControl{}):
		return "control"
	case fmt.Sprintf("%T", fileAuth{}):
		return "control.auth"
	case fmt.Sprintf("%T", fileSigning{}):
		return "signing"
	case fmt.Sprintf("%T", fileAdmin{}):
		return "admin"
	case fmt.Sprintf("%T", fileDrain{}):
		return "drain"
	case fmt.Sprintf("%T", fileReload{}):
		return "reload"
	case fmt.Sprintf("%T", fileLimits{}):
		return "limits"
	case fmt.Sprintf("%T", fileHistory{}):
		return "history"
	case fmt.Sprintf("%T", fileRoute{}):
		return "a route"
	case fmt.Sprintf("%T", fileMatch{}):
		return "a route's match"
	case fmt.Sprintf("%T", fileRewrite{}):
		return "a route's rewrite"
	case fmt.Sprintf("%T", fileHeaders{}):
		return "a route's headers"
	}
	return typeName
}

// documentRoot returns the top mapping of a parsed document, or nil for
// an empty file.
func documentRoot(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		return doc.Content[0]
	}
	return nil
}

// valueNode returns the value of key in a mapping node, or nil when the
// node is nil, not a mapping, or has no such key.
func valueNode(mapping *yaml.Node, key string) *yaml.Node {
	if mapping == nil || mapping.Kind != yaml.MappingNode {
		return nil
	}
	// A mapping's Content alternates keys and values.
	for i := 0; i+1 < len(mapping.Content); i += 2 {
		if mapping.Content[i].Value == key {
			return mapping.Content[i+1]
		}
	}
	return nil
}

// sequenceItem returns item i of a sequence node, or nil.
func sequenceItem(sequence *yaml.Node, i int) *yaml.Node {
	if sequence == nil || sequence.Kind != yaml.SequenceNode || i >= len(sequence.Content) {
		return nil
	}
	return sequence.Content[i]
}

// lineOf returns the line of key's value in mapping, or the mapping's own
// line when the key is absent.
func lineOf(mapping *yaml.Node, key string) int {
	if value := valueNode(mapping, key); value != nil {
		return value.Line
	}
	return nodeLine(mapping)
}

// nodeLine returns a node's line, or 0 when there is no node (a section
// that the file leaves out).
func nodeLine(node *yaml.Node) int {
	if node == nil {
		return 0
	}
	return node.Line
}
