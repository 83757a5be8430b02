package config

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gripd/gripd/proxy"
)

func TestLoadExampleConfig(t *testing.T) {
	cfg, err := Load("../../routes.yaml.example")
	if err != nil {
		t.Fatalf("the example config does not load: %v", err)
	}
	if cfg.Listen != ":7999" || cfg.Control.Listen != "127.0.0.1:5561" || cfg.BackendTimeout.Std() != 30*time.Second {
		t.Errorf("listen/control/timeout = %q, %q, %v", cfg.Listen, cfg.Control.Listen, cfg.BackendTimeout)
	}
	// The example shows the limits at their defaults: the numbers it
	// documents are the real ones.
	defaults := Default()
	if cfg.Limits != defaults.Limits || cfg.BackendDialTimeout != defaults.BackendDialTimeout {
		t.Errorf("the example's limits %+v %v are not the defaults %+v %v", cfg.Limits,
			cfg.BackendDialTimeout, defaults.Limits, defaults.BackendDialTimeout)
	}
	if len(cfg.Routes) != 1 {
		t.Fatalf("routes = %d, want 1", len(cfg.Routes))
	}
	route := cfg.Routes[0]
	if route.ID != "default" || route.Backends[0].URL.String() != "http://127.0.0.1:8000" {
		t.Errorf("route = %+v", route)
	}
	table, err := proxy.NewTable(cfg.Routes)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := table.Match("anything.example:7999", "/x"); !ok {
		t.Error("the example's route does not match every request")
	}
}

// TestExampleConfigCommentedKeys uncomments the example's commented-out
// keys, so that every key documented there is known to parse.
func TestExampleConfigCommentedKeys(t *testing.T) {
	data, err := os.ReadFile("../../routes.yaml.example")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		indent := line[:len(line)-len(trimmed)]
		switch {
		case strings.HasPrefix(trimmed, "# auth:"), strings.HasPrefix(trimmed, "# key:"),
			strings.HasPrefix(trimmed, "#   ") && !strings.HasPrefix(trimmed, "#   #") && indent != "",
			strings.HasPrefix(trimmed, "# - # "):
			// "# x" -> "x", keeping the indentation.
			line = indent + strings.TrimPrefix(strings.TrimPrefix(trimmed, "#"), " ")
			if strings.HasPrefix(trimmed, "# - # ") {
				line = indent + "- id: full"
			}
		}
		lines = append(lines, line)
	}
	text := strings.Join(lines, "\n")
	// The example shows both rewrites; keep the first.
	text = strings.Replace(text, "\n    rewrite: {replace_prefix: /v2/}", "", 1)
	text = strings.Replace(text, "\n    id: api", "", 1)
	cfg, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("the example with its keys uncommented does not load: %v\n%s", err, text)
	}
	if len(cfg.Routes) != 2 {
		t.Fatalf("routes = %d, want 2\n%s", len(cfg.Routes), text)
	}
	full := cfg.Routes[1]
	if full.Host != "example.com" || full.PathPrefix != "/api/" || full.StripChars != len("/api/") ||
		len(full.Backends) != 2 || !full.Backends[0].OverHTTP || full.SetHeaders.Get("X-Env") != "prod" ||
		!full.AutoCrossOrigin {
		t.Errorf("full route = %+v", full)
	}
	if cfg.Control.Auth.Username != "publisher" || string(cfg.Control.Auth.Key) != "secret-key" {
		t.Errorf("auth = %+v", cfg.Control.Auth)
	}
	if string(cfg.Signing.Key) != "changeme" {
		t.Errorf("signing key = %q, want the example's", cfg.Signing.Key)
	}
}

func TestParseConfigFull(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "sig.key")
	if err := os.WriteFile(keyFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yamlText := `
listen: "0.0.0.0:8080"
backend_timeout: 1m30s
backend_max_conns: 64
control:
  listen: "127.0.0.1:6000"
  auth:
    key: "base64:aGVsbG8="
    iss: backend
    username: u
    password: p
signing: {iss: me, key: "file:` + keyFile + `"}
drain: {duration: 2m}
reload: {watch: false}
routes:
  - id: api
    match: {host: "Example.com", path_prefix: /api/}
    rewrite: {replace_prefix: /v2/}
    backends: ["http://127.0.0.1:8000", "https://b.example", "http://[::1]"]
    balance: round_robin
    no_grip: true
    insecure: true
    host: "api.example.com:8443"
    websocket: over_http
    headers: {set: {x-env: prod, Cookie: ""}}
    auto_cross_origin: true
  - match: {path_prefix: /}
    rewrite: {strip_prefix: true}
    backends: ["http://localhost:9000/"]
`
	cfg, err := Parse([]byte(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	replacement := "/v2/"
	want := Default()
	want.Listen = "0.0.0.0:8080"
	want.BackendTimeout = Duration(90 * time.Second)
	want.BackendMaxConns = 64
	want.Control = Control{
		Listen:         "127.0.0.1:6000",
		Auth:           ControlAuth{Key: Key("hello"), Iss: "backend", Username: "u", Password: "p"},
		MaxDeliveryLag: Duration(2 * time.Second),
		BodyTimeout:    Duration(10 * time.Second),
	}
	want.Signing = Signing{Iss: "me", Key: Key("from-file")}
	want.Drain = Drain{Duration: Duration(2 * time.Minute)}
	want.Reload = Reload{Watch: false}
	want.Routes = Routes{
		{
			ID:              "api",
			Host:            "Example.com",
			PathPrefix:      "/api/",
			ReplacePrefix:   &replacement,
			Balance:         proxy.BalanceRoundRobin,
			NoGrip:          true,
			AutoCrossOrigin: true,
			SetHeaders:      http.Header{"X-Env": {"prod"}, "Cookie": {""}},
			Backends: []proxy.Backend{
				{URL: mustURL(t, "http://127.0.0.1:8000"), Insecure: true, HostHeader: "api.example.com:8443", OverHTTP: true},
				{URL: mustURL(t, "https://b.example:443"), Insecure: true, HostHeader: "api.example.com:8443", OverHTTP: true},
				{URL: mustURL(t, "http://[::1]:80"), Insecure: true, HostHeader: "api.example.com:8443", OverHTTP: true},
			},
		},
		{
			ID:         "*,/",
			PathPrefix: "/",
			StripChars: 1,
			Balance:    proxy.BalanceFailover,
			Backends:   []proxy.Backend{{URL: mustURL(t, "http://localhost:9000")}},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("ParseConfig\n got %+v\nwant %+v", cfg, want)
		for i := range cfg.Routes {
			t.Logf("route %d: %+v", i, cfg.Routes[i])
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	want := &Config{
		Listen:             ":7999",
		BackendTimeout:     Duration(30 * time.Second),
		BackendDialTimeout: Duration(5 * time.Second),
		BackendMaxConns:    4096,
		SubscriberQueue:    100,
		Control:            Control{Listen: "127.0.0.1:5561", MaxDeliveryLag: Duration(2 * time.Second), BodyTimeout: Duration(10 * time.Second)},
		Signing:            Signing{Iss: "gripd"},
		Admin:              Admin{Listen: "127.0.0.1:5563"},
		Limits: Limits{MaxRequestBody: 10 << 20, MaxInstructBody: 100000, MaxChannels: 100, MaxWSMessage: 1000000,
			MaxClientConns: 0, MaxHeaderBytes: 64 << 10,
			ReadHeaderTimeout: Duration(10 * time.Second), IdleTimeout: Duration(120 * time.Second),
			ReadBodyTimeout: Duration(time.Minute), BackendQueueTimeout: Duration(5 * time.Second),
			MaxLinksWithoutHold: 1000, LinkInterval: Duration(100 * time.Millisecond),
			WSMessageTimeout: Duration(30 * time.Second), WSPartialBudget: 64 << 20},
		Drain:   Drain{Duration: Duration(30 * time.Second)},
		Reload:  Reload{Watch: true},
		History: History{MaxAge: Duration(time.Hour), MaxItemsPerChannel: 1000, DuplicateWindow: Duration(2 * time.Minute)},
	}
	if got := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() = %+v, want %+v", got, want)
	}
	// A file that sets nothing takes every default; routes may come from
	// --route flags instead.
	for _, text := range []string{"", "# only a comment\n", "routes: []\n", "control: {}\nsigning: {}\nlimits: {}\n"} {
		cfg, err := Parse([]byte(text))
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("Parse(%q) = %+v, want the defaults", text, cfg)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	const route = "routes:\n  - id: r\n    backends: [\"http://127.0.0.1:8000\"]\n"
	tests := []struct {
		name    string
		yaml    string
		wantErr []string // every part must appear in the error
	}{
		{
			name:    "unknown top-level key",
			yaml:    "listen: \":7999\"\nlisten_addr: x\n",
			wantErr: []string{`line 2: unknown key "listen_addr" in the top level`},
		},
		{
			name:    "unknown route key",
			yaml:    "routes:\n  - id: r\n    backend: [\"http://127.0.0.1:8000\"]\n",
			wantErr: []string{"line 3", `unknown key "backend"`, "in a route"},
		},
		{
			name:    "unknown match key",
			yaml:    "routes:\n  - id: r\n    match: {host: a.com, path: /x}\n    backends: [\"http://h\"]\n",
			wantErr: []string{"line 3", `unknown key "path"`, "match"},
		},
		{
			name:    "unknown auth key",
			yaml:    "control:\n  auth:\n    user: x\n",
			wantErr: []string{"line 3", `unknown key "user"`, "control.auth"},
		},
		{
			name:    "yaml syntax error",
			yaml:    "listen: [\n",
			wantErr: []string{"line"},
		},
		{
			name:    "wrong type",
			yaml:    "routes:\n  - id: r\n    no_grip: maybe\n    backends: [\"http://h\"]\n",
			wantErr: []string{"line 3", "bool"},
		},
		{
			name:    "two documents",
			yaml:    route + "---\nlisten: \":1\"\n",
			wantErr: []string{"one YAML document"},
		},
		{
			name:    "drain duration not a duration",
			yaml:    "drain:\n  duration: soon\n",
			wantErr: []string{"line 2", "drain.duration", `"soon"`},
		},
		{
			name:    "drain duration negative",
			yaml:    "drain:\n  duration: -1s\n",
			wantErr: []string{"line 2", "drain.duration"},
		},
		{
			name:    "unknown drain key",
			yaml:    "drain:\n  window: 1s\n",
			wantErr: []string{"line 2", `unknown key "window"`, "in drain"},
		},
		{
			name:    "reload watch not a bool",
			yaml:    "reload:\n  watch: often\n",
			wantErr: []string{"line 2", "bool"},
		},
		{
			name:    "backend_max_conns below one",
			yaml:    "backend_max_conns: 0\n",
			wantErr: []string{"line 1", "backend_max_conns 0", "at least 1"},
		},
		{
			name:    "bad duration",
			yaml:    "backend_timeout: 30\n",
			wantErr: []string{"line 1", `backend_timeout "30"`, "duration"},
		},
		{
			name:    "bad duration text",
			yaml:    "listen: \":1\"\nbackend_timeout: soon\n",
			wantErr: []string{"line 2", `backend_timeout "soon"`},
		},
		{
			name:    "zero duration",
			yaml:    "backend_timeout: 0s\n",
			wantErr: []string{"line 1", "more than zero"},
		},
		{
			name:    "bad listen",
			yaml:    "listen: \"7999\"\n",
			wantErr: []string{"line 1", "listen", "host:port"},
		},
		{
			name:    "bad control listen",
			yaml:    "control:\n  listen: localhost\n",
			wantErr: []string{"line 2", "control.listen"},
		},
		{
			name:    "bad control key",
			yaml:    "control:\n  auth:\n    key: \"base64:%%%\"\n",
			wantErr: []string{"line 3", "control.auth.key"},
		},
		{
			name:    "control iss without key",
			yaml:    "control:\n  auth:\n    iss: x\n",
			wantErr: []string{"line 3", "needs control.auth.key"},
		},
		{
			name:    "username without password",
			yaml:    "control:\n  auth:\n    username: x\n",
			wantErr: []string{"line 3", "username and password"},
		},
		{
			name:    "bad signing key file",
			yaml:    "signing:\n  key: \"file:/does/not/exist\"\n",
			wantErr: []string{"line 2", "signing.key"},
		},
		{
			name:    "bad backend URL scheme",
			yaml:    "routes:\n  - id: r\n    backends:\n      - \"http://ok:80\"\n      - \"ftp://h:21\"\n",
			wantErr: []string{"line 5", `route "r"`, `backend "ftp://h:21"`, "http://host"},
		},
		{
			name:    "backend URL without scheme",
			yaml:    "routes:\n  - id: r\n    backends: [\"127.0.0.1:8000\"]\n",
			wantErr: []string{"line 3", `route "r"`, `backend "127.0.0.1:8000"`},
		},
		{
			name:    "backend URL with path",
			yaml:    "routes:\n  - id: r\n    backends: [\"http://h/api\"]\n",
			wantErr: []string{"line 3", "no path"},
		},
		{
			name:    "backend URL with query",
			yaml:    "routes:\n  - id: r\n    backends: [\"http://h?x=1\"]\n",
			wantErr: []string{"line 3", "no query"},
		},
		{
			name:    "backend URL with credentials",
			yaml:    "routes:\n  - id: r\n    backends: [\"http://u:p@h\"]\n",
			wantErr: []string{"line 3", "credentials"},
		},
		{
			name:    "backend URL bad port",
			yaml:    "routes:\n  - id: r\n    backends: [\"http://h:70000\"]\n",
			wantErr: []string{"line 3", "bad port"},
		},
		{
			name:    "backend URL empty host",
			yaml:    "routes:\n  - id: r\n    backends: [\"http://:80\"]\n",
			wantErr: []string{"line 3", "missing host"},
		},
		{
			name:    "no backends",
			yaml:    "routes:\n  - id: r\n    match: {host: a.com}\n",
			wantErr: []string{"line 2", `route "r"`, "at least one backend"},
		},
		{
			name:    "both rewrites",
			yaml:    "routes:\n  - id: r\n    match: {path_prefix: /api/}\n    rewrite: {strip_prefix: true, replace_prefix: /v2/}\n    backends: [\"http://h\"]\n",
			wantErr: []string{"line 4", `route "r"`, "strip_prefix and replace_prefix"},
		},
		{
			name:    "strip_prefix without a prefix",
			yaml:    "routes:\n  - id: r\n    rewrite: {strip_prefix: true}\n    backends: [\"http://h\"]\n",
			wantErr: []string{"line 3", "needs match.path_prefix"},
		},
		{
			name:    "bad balance",
			yaml:    "routes:\n  - id: r\n    backends: [\"http://h\"]\n    balance: random\n",
			wantErr: []string{"line 4", `route "r"`, `balance "random"`},
		},
		{
			name:    "bad websocket",
			yaml:    "routes:\n  - id: r\n    backends: [\"http://h\"]\n    websocket: native\n",
			wantErr: []string{"line 4", `websocket "native"`},
		},
		{
			name:    "path prefix without slash",
			yaml:    "routes:\n  - id: r\n    match: {path_prefix: api}\n    backends: [\"http://h\"]\n",
			wantErr: []string{"line 2", `route "r"`, `"api" must start with "/"`},
		},
		{
			name:    "host with port",
			yaml:    "routes:\n  - id: r\n    match: {host: \"a.com:80\"}\n    backends: [\"http://h\"]\n",
			wantErr: []string{"line 2", `route "r"`, `host "a.com:80"`},
		},
		{
			name:    "bad header name",
			yaml:    "routes:\n  - id: r\n    backends: [\"http://h\"]\n    headers: {set: {\"Bad Name\": x}}\n",
			wantErr: []string{"line 2", `route "r"`, "bad header name"},
		},
		{
			name:    "bad host header",
			yaml:    "routes:\n  - id: r\n    backends: [\"http://h\"]\n    host: \"a b\"\n",
			wantErr: []string{"line 2", `route "r"`, "host header"},
		},
		{
			name:    "default id names the route",
			yaml:    "routes:\n  - match: {host: a.com, path_prefix: /x}\n    backends: []\n",
			wantErr: []string{"line 2", `route "a.com,/x"`},
		},
		{
			name:    "duplicate ids",
			yaml:    route + "  - id: r\n    match: {host: b.com}\n    backends: [\"http://h\"]\n",
			wantErr: []string{`line 4: route "r": duplicate route id`},
		},
		{
			name:    "duplicate host and prefix",
			yaml:    "routes:\n  - id: one\n    match: {host: a.com}\n    backends: [\"http://h\"]\n  - id: two\n    match: {host: A.com}\n    backends: [\"http://h\"]\n",
			wantErr: []string{`line 5: routes "one" and "two" both match host "a.com"`},
		},
		{
			name:    "not a mapping",
			yaml:    "- a\n- b\n",
			wantErr: []string{"line 1", "the top level (a mapping)"},
		},
		{
			name:    "route not a mapping",
			yaml:    "routes:\n  - http://h\n",
			wantErr: []string{"line 2", "a route (a mapping)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("ParseConfig succeeded (%+v), want an error containing %q", cfg, tt.wantErr)
			}
			for _, part := range tt.wantErr {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
		})
	}
}

func TestLoadConfigErrorsNameTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte("listen: \":1\"\nbogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": line 2: ") {
		t.Errorf("LoadConfig error = %v, want it to start with %q", err, path+": line 2: ")
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("LoadConfig of a missing file succeeded")
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
