package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// backend is a test helper that builds a Backend from a URL string.
func backend(t *testing.T, rawURL string) Backend {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("bad test URL %q: %v", rawURL, err)
	}
	return Backend{URL: u}
}

func strPtr(s string) *string { return &s }

func TestParseRouteLine(t *testing.T) {
	tests := []struct {
		name string
		line string
		want func(t *testing.T) Route
	}{
		{
			name: "any host, one target",
			line: "* localhost:8000",
			want: func(t *testing.T) Route {
				return Route{ID: "*", Host: "*", Balance: BalanceFailover,
					Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "exact host with comment and extra spaces",
			line: "  example.com   127.0.0.1:80   # the main site",
			want: func(t *testing.T) Route {
				return Route{ID: "example.com", Host: "example.com", Balance: BalanceFailover,
					Backends: []Backend{backend(t, "http://127.0.0.1:80")}}
			},
		},
		{
			name: "tabs separate sections",
			line: "*\tlocalhost:8000",
			want: func(t *testing.T) Route {
				return Route{ID: "*", Host: "*", Balance: BalanceFailover,
					Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "trailing line ending is ignored",
			line: "* localhost:8000\r\n",
			want: func(t *testing.T) Route {
				return Route{ID: "*", Host: "*", Balance: BalanceFailover,
					Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "bracketed IPv6 condition is stored bare",
			line: "[::1] localhost:8000",
			want: func(t *testing.T) Route {
				return Route{ID: "::1", Host: "::1", Balance: BalanceFailover,
					Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "path_beg and id",
			line: "*,path_beg=/api/,id=api localhost:8000",
			want: func(t *testing.T) Route {
				return Route{ID: "api", Host: "*", PathPrefix: "/api/", Balance: BalanceFailover,
					Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "default id includes the path prefix",
			line: "example.com,path_beg=/stream localhost:8000",
			want: func(t *testing.T) Route {
				return Route{ID: "example.com,/stream", Host: "example.com", PathPrefix: "/stream",
					Balance: BalanceFailover, Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "replace_beg",
			line: "*,path_beg=/api/,replace_beg=/v2/ localhost:8000",
			want: func(t *testing.T) Route {
				return Route{ID: "*,/api/", Host: "*", PathPrefix: "/api/", ReplacePrefix: strPtr("/v2/"),
					Balance: BalanceFailover, Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "empty replace_beg removes the prefix",
			line: "*,path_beg=/api,replace_beg= localhost:8000",
			want: func(t *testing.T) Route {
				return Route{ID: "*,/api", Host: "*", PathPrefix: "/api", ReplacePrefix: strPtr(""),
					Balance: BalanceFailover, Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "path_rem",
			line: "*,path_beg=/api,path_rem=4 localhost:8000",
			want: func(t *testing.T) Route {
				return Route{ID: "*,/api", Host: "*", PathPrefix: "/api", StripChars: 4,
					Balance: BalanceFailover, Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "sig_iss and literal sig_key",
			line: "*,sig_iss=me,sig_key=s3cret localhost:8000",
			want: func(t *testing.T) Route {
				return Route{ID: "*", Host: "*", SigIss: "me", SigKey: []byte("s3cret"),
					Balance: BalanceFailover, Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "base64 sig_key",
			line: "*,sig_key=base64:aGVsbG8= localhost:8000",
			want: func(t *testing.T) Route {
				return Route{ID: "*", Host: "*", SigKey: []byte("hello"),
					Balance: BalanceFailover, Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "no_grip",
			line: "*,no_grip localhost:8000",
			want: func(t *testing.T) Route {
				return Route{ID: "*", Host: "*", NoGrip: true,
					Balance: BalanceFailover, Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "aco",
			line: "*,aco,no_grip localhost:8000",
			want: func(t *testing.T) Route {
				return Route{ID: "*", Host: "*", AutoCrossOrigin: true, NoGrip: true,
					Balance: BalanceFailover, Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "headers: set, quoted with spaces and comma, remove",
			line: `*,header=X-Env:prod,header="X-Note: a b, c",header=X-Remove: localhost:8000`,
			want: func(t *testing.T) Route {
				return Route{ID: "*", Host: "*", Balance: BalanceFailover,
					SetHeaders: http.Header{
						"X-Env":    {"prod"},
						"X-Note":   {"a b, c"},
						"X-Remove": {""},
					},
					Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "repeated header: last one wins",
			line: "*,header=X-A:1,header=x-a:2 localhost:8000",
			want: func(t *testing.T) Route {
				return Route{ID: "*", Host: "*", Balance: BalanceFailover,
					SetHeaders: http.Header{"X-A": {"2"}},
					Backends:   []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "quoted value with escapes and a hash",
			line: `*,id="my \"route\" #1 \\ ok" localhost:8000`,
			want: func(t *testing.T) Route {
				return Route{ID: `my "route" #1 \ ok`, Host: "*", Balance: BalanceFailover,
					Backends: []Backend{backend(t, "http://localhost:8000")}}
			},
		},
		{
			name: "target props: ssl, insecure, host, over_http",
			line: "* api.internal:443,ssl,insecure,host=api.example.com,over_http",
			want: func(t *testing.T) Route {
				b := backend(t, "https://api.internal:443")
				b.Insecure = true
				b.HostHeader = "api.example.com"
				b.OverHTTP = true
				return Route{ID: "*", Host: "*", Balance: BalanceFailover, Backends: []Backend{b}}
			},
		},
		{
			name: "target host with port",
			line: "* localhost:8000,host=example.com:8443",
			want: func(t *testing.T) Route {
				b := backend(t, "http://localhost:8000")
				b.HostHeader = "example.com:8443"
				return Route{ID: "*", Host: "*", Balance: BalanceFailover, Backends: []Backend{b}}
			},
		},
		{
			name: "IPv6 target and several targets fail over in order",
			line: "* [::1]:8000 10.0.0.2:8000,ssl",
			want: func(t *testing.T) Route {
				return Route{ID: "*", Host: "*", Balance: BalanceFailover, Backends: []Backend{
					backend(t, "http://[::1]:8000"),
					backend(t, "https://10.0.0.2:8000"),
				}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRouteLine(tt.line)
			if err != nil {
				t.Fatalf("ParseRouteLine(%q): %v", tt.line, err)
			}
			want := tt.want(t)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("ParseRouteLine(%q)\n got %#v\nwant %#v", tt.line, got, want)
			}
		})
	}
}

func TestParseRouteLineKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(path, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	route, err := ParseRouteLine(`*,sig_key="file:` + path + `" localhost:8000`)
	if err != nil {
		t.Fatal(err)
	}
	if string(route.SigKey) != "from-file" {
		t.Errorf("SigKey = %q, want %q", route.SigKey, "from-file")
	}
}

func TestParseRouteLineBlank(t *testing.T) {
	for _, line := range []string{"", "   ", "# just a comment", "  # indented comment", "\n"} {
		_, err := ParseRouteLine(line)
		if !errors.Is(err, ErrBlankLine) {
			t.Errorf("ParseRouteLine(%q) error = %v, want ErrBlankLine", line, err)
		}
	}
}

func TestParseRouteLineErrors(t *testing.T) {
	tests := []struct {
		line    string
		wantErr string // a part of the error message
	}{
		// Line shape.
		{"*", "needs a condition and at least one target"},
		{"example.com # no target", "needs a condition and at least one target"},
		{"* a:1\n* b:2", "line break"},
		{`*,id="open localhost:8000`, "unterminated quoted value"},
		{`*,id="a\n" localhost:8000`, "bad escape"},
		{`*,id="a\` + `" localhost:8000`, "unterminated quoted value"},
		{"*, localhost:8000", "empty route property"},
		{"*,,id=a localhost:8000", "empty route property"},
		{"*,=x localhost:8000", "has no name"},
		// Condition.
		{"id=x localhost:8000", "missing host"},
		{"example.com:8080 localhost:8000", `host "example.com:8080"`},
		{"exa/mple.com localhost:8000", "bad character"},
		{"*.example.com localhost:8000", "bad character"},
		{"*,foo localhost:8000", `unknown route property "foo"`},
		{"*,foo=bar localhost:8000", `unknown route property "foo"`},
		{"*,debug localhost:8000", `unknown route property "debug" (a Pushpin feature`},
		{"*,aco=true localhost:8000", `"aco" is a flag and takes no value`},
		{"*,aco,aco localhost:8000", `"aco" given twice`},
		{"*,ssl=yes localhost:8000", `unknown route property "ssl"`},
		{"*,path_beg localhost:8000", "path_beg needs a value"},
		{"*,path_beg= localhost:8000", "path_beg needs a value"},
		{"*,path_beg=api localhost:8000", `path_beg "api" must start with "/"`},
		{"*,path_beg=/a,path_beg=/b localhost:8000", `"path_beg" given twice`},
		{"*,path_rem=abc localhost:8000", `path_rem "abc"`},
		{"*,path_rem=-1 localhost:8000", `path_rem "-1"`},
		{"*,path_rem= localhost:8000", `path_rem ""`},
		{"*,path_beg=/a,path_rem=2,replace_beg=/b localhost:8000", "path_rem and replace_beg cannot be combined"},
		{"*,id= localhost:8000", "id needs a value"},
		{"*,sig_iss= localhost:8000", "sig_iss needs a value"},
		{"*,sig_key= localhost:8000", "sig_key needs a value"},
		{"*,sig_key=base64:!!! localhost:8000", "sig_key: key base64"},
		{"*,sig_key=file:/does/not/exist localhost:8000", "sig_key: key file"},
		{"*,no_grip=false localhost:8000", `"no_grip" is a flag and takes no value`},
		{"*,header=NoColon localhost:8000", "want Name:Value"},
		{"*,header=:v localhost:8000", "want Name:Value"},
		{`*,header="Bad Name:v" localhost:8000`, "bad header name"},
		{"*,header=X-A:\x01 localhost:8000", "control characters"},
		// Targets.
		{"* localhost", `target "localhost": want host:port`},
		{"* test", `target "test": want host:port`},
		{"* zhttp/tcp://127.0.0.1:5000", `target "zhttp/tcp://127.0.0.1:5000"`},
		{"* ::1:8000", `target "::1:8000": want host:port`},
		{"* localhost:0", "bad port"},
		{"* localhost:65536", "bad port"},
		{"* localhost:http", "bad port"},
		{"* :8000", "empty host"},
		{"* [::zz]:8000", "bad host"},
		{"* ,ssl", "target: missing host:port"},
		{"* ssl=1", "target: missing host:port"},
		{"* localhost:8000,foo", `target "localhost:8000": unknown route property "foo"`},
		{"* localhost:8000,sub=x", `unknown route property "sub" (a Pushpin feature`},
		{"* localhost:8000,ssl=no", `"ssl" is a flag`},
		{"* localhost:8000,insecure=false", `"insecure" is a flag`},
		{"* localhost:8000,over_http=1", `"over_http" is a flag`},
		{"* localhost:8000,ssl,ssl", `"ssl" given twice`},
		{"* localhost:8000,host=", "needs a value"},
		{"* localhost:8000,host=a/b", "bad character"},
		{"* localhost:8000,host=example.com:x", "bad port"},
		{"* localhost:8000 other:99999", `target "other:99999": bad port`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			route, err := ParseRouteLine(tt.line)
			if err == nil {
				t.Fatalf("ParseRouteLine(%q) = %+v, want an error containing %q", tt.line, route, tt.wantErr)
			}
			if errors.Is(err, ErrBlankLine) {
				t.Fatalf("ParseRouteLine(%q) = ErrBlankLine, want %q", tt.line, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRouteLine(%q) error = %q, want it to contain %q", tt.line, err, tt.wantErr)
			}
		})
	}
}

func TestDefaultRouteID(t *testing.T) {
	tests := []struct{ host, prefix, want string }{
		{"", "", "*"},
		{"*", "", "*"},
		{"example.com", "", "example.com"},
		{"", "/api/", "*,/api/"},
		{"example.com", "/api/", "example.com,/api/"},
	}
	for _, tt := range tests {
		if got := DefaultRouteID(tt.host, tt.prefix); got != tt.want {
			t.Errorf("DefaultRouteID(%q, %q) = %q, want %q", tt.host, tt.prefix, got, tt.want)
		}
	}
}

func TestRedactRouteLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"* 127.0.0.1:8000", "* 127.0.0.1:8000"},
		{"* sig_key=secret 127.0.0.1:8000", "* sig_key=REDACTED 127.0.0.1:8000"},
		{"*,sig_iss=x,sig_key=base64:c2VjcmV0,id=a 127.0.0.1:8000", "*,sig_iss=x,sig_key=REDACTED,id=a 127.0.0.1:8000"},
		{`*,sig_key="a b,c" 127.0.0.1:8000`, `*,sig_key=REDACTED 127.0.0.1:8000`},
		{`*,sig_key="unterminated 127.0.0.1:8000`, `*,sig_key=REDACTED`},
		{"a,sig_key=1 b,sig_key=2", "a,sig_key=REDACTED b,sig_key=REDACTED"},
	} {
		if got := RedactRouteLine(tc.in); got != tc.want {
			t.Errorf("RedactRouteLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
