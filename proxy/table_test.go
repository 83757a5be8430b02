package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// testRoute builds a route for table tests with one backend.
func testRoute(id, host, pathPrefix string) Route {
	return Route{
		ID:         id,
		Host:       host,
		PathPrefix: pathPrefix,
		Backends:   []Backend{{URL: &url.URL{Scheme: "http", Host: "127.0.0.1:8000"}}},
	}
}

func TestTableMatch(t *testing.T) {
	table, err := NewTable([]Route{
		testRoute("any", "*", ""),
		testRoute("any-api", "", "/api/"),
		testRoute("ex", "example.com", ""),
		testRoute("ex-api", "example.com", "/api/"),
		testRoute("ex-api-v2", "Example.COM", "/api/v2/"), // case does not matter
		testRoute("only-stream", "stream.example.com", "/stream"),
		testRoute("v6", "::1", "/"),
		testRoute("v6-bracketed", "[fe80::2]", "/"),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, host, path string
		wantID           string // "" means no route
	}{
		{"star route for unknown host", "other.org", "/x", "any"},
		{"longest star prefix", "other.org", "/api/x", "any-api"},
		{"host beats star", "example.com", "/x", "ex"},
		{"host route even when a star route has a longer prefix", "example.com", "/api/x", "ex-api"},
		{"longest prefix among host routes", "example.com", "/api/v2/x", "ex-api-v2"},
		{"port stripped", "example.com:7999", "/api/v2/", "ex-api-v2"},
		{"host case-insensitive", "EXAMPLE.com", "/", "ex"},
		{"raw prefix match, not per segment", "stream.example.com", "/streamer", "only-stream"},
		{"prefix match is on the encoded path: %2F is not /", "example.com", "/api%2Fv2/x", "ex"},
		{"no route when only non-matching host lines", "stream.example.com", "/other", ""},
		{"no route for the host's root either", "stream.example.com", "/", ""},
		{"bare IPv6 host", "::1", "/x", "v6"},
		{"bracketed IPv6 host with port", "[::1]:7999", "/x", "v6"},
		{"bracketed route host", "[fe80::2]", "/x", "v6-bracketed"},
		{"empty host uses star routes", "", "/x", "any"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			route, ok := table.Match(tt.host, tt.path)
			if tt.wantID == "" {
				if ok {
					t.Fatalf("Match(%q, %q) = %q, want no route", tt.host, tt.path, route.ID)
				}
				return
			}
			if !ok {
				t.Fatalf("Match(%q, %q) = no route, want %q", tt.host, tt.path, tt.wantID)
			}
			if route.ID != tt.wantID {
				t.Errorf("Match(%q, %q) = %q, want %q", tt.host, tt.path, route.ID, tt.wantID)
			}
		})
	}
}

func TestTableNoStarRoute(t *testing.T) {
	table, err := NewTable([]Route{testRoute("ex", "example.com", "")})
	if err != nil {
		t.Fatal(err)
	}
	if route, ok := table.Match("other.org", "/"); ok {
		t.Errorf("Match(other.org) = %q, want no route", route.ID)
	}
	empty, err := NewTable(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := empty.Match("example.com", "/"); ok {
		t.Error("empty table matched")
	}
}

func TestTableLineOrderDoesNotMatter(t *testing.T) {
	routes := []Route{
		testRoute("short", "*", "/a"),
		testRoute("long", "*", "/a/b"),
		testRoute("root", "*", ""),
	}
	reversed := []Route{routes[2], routes[1], routes[0]}
	for _, list := range [][]Route{routes, reversed} {
		table, err := NewTable(list)
		if err != nil {
			t.Fatal(err)
		}
		for path, want := range map[string]string{"/a/b/c": "long", "/a/c": "short", "/x": "root"} {
			route, ok := table.Match("h", path)
			if !ok || route.ID != want {
				t.Errorf("Match(%q) = %v, %v; want %q", path, route, ok, want)
			}
		}
	}
}

func TestTableFromRouteLines(t *testing.T) {
	var routes []Route
	for _, line := range []string{
		"* localhost:8000",
		"example.com,path_beg=/api/ localhost:8001",
	} {
		route, err := ParseRouteLine(line)
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, route)
	}
	table, err := NewTable(routes)
	if err != nil {
		t.Fatal(err)
	}
	route, ok := table.Match("example.com:7999", "/api/x")
	if !ok || route.ID != "example.com,/api/" || route.Backends[0].URL.Host != "localhost:8001" {
		t.Errorf("Match = %+v, %v", route, ok)
	}
	if _, ok := table.Match("example.com", "/"); ok {
		t.Error("example.com / matched, want no route (host has lines, none match)")
	}
}

func TestNewTableDefaults(t *testing.T) {
	route := testRoute("", "example.com", "/api/")
	table, err := NewTable([]Route{route})
	if err != nil {
		t.Fatal(err)
	}
	got := table.Routes()[0]
	if got.ID != "example.com,/api/" {
		t.Errorf("ID = %q, want the default id", got.ID)
	}
	if got.Balance != BalanceFailover {
		t.Errorf("Balance = %q, want failover", got.Balance)
	}
}

func TestNewTableErrors(t *testing.T) {
	noBackends := testRoute("nb", "*", "")
	noBackends.Backends = nil
	nilURL := testRoute("nu", "*", "")
	nilURL.Backends = []Backend{{}}
	badScheme := testRoute("bs", "*", "")
	badScheme.Backends[0].URL = &url.URL{Scheme: "ftp", Host: "h:21"}
	noPort := testRoute("np", "*", "")
	noPort.Backends[0].URL = &url.URL{Scheme: "http", Host: "h"}
	badHostHeader := testRoute("bh", "*", "")
	badHostHeader.Backends[0].HostHeader = "a b"
	badBalance := testRoute("bb", "*", "")
	badBalance.Balance = "random"
	negStrip := testRoute("ns", "*", "")
	negStrip.StripChars = -1
	badHeader := testRoute("hd", "*", "")
	badHeader.SetHeaders = http.Header{"Bad Name": {"x"}}
	badHeaderValue := testRoute("hv", "*", "")
	badHeaderValue.SetHeaders = http.Header{"X-A": {"a\nb"}}

	tests := []struct {
		name    string
		routes  []Route
		wantErr string
	}{
		{"no backends", []Route{noBackends}, `route "nb": no backends`},
		{"nil backend URL", []Route{nilURL}, `route "nu": backend 1: missing URL`},
		{"bad scheme", []Route{badScheme}, `route "bs": backend 1: "ftp://h:21": scheme must be http or https`},
		{"backend without port", []Route{noPort}, `route "np": backend 1`},
		{"bad host header", []Route{badHostHeader}, `route "bh": backend 1: host header`},
		{"bad balance", []Route{badBalance}, `route "bb": balance "random"`},
		{"negative strip", []Route{negStrip}, `route "ns": strip chars -1`},
		{"bad header name", []Route{badHeader}, `route "hd": header "Bad Name"`},
		{"bad header value", []Route{badHeaderValue}, `route "hv": header "X-A"`},
		{"bad host", []Route{testRoute("h", "exa mple", "")}, `route "h": host "exa mple"`},
		{"host with port", []Route{testRoute("hp", "example.com:8080", "")}, `route "hp": host "example.com:8080"`},
		{"bad prefix", []Route{testRoute("p", "*", "api")}, `route "p": path prefix "api" must start with "/"`},
		{
			"duplicate ids",
			[]Route{testRoute("same", "a.com", ""), testRoute("same", "b.com", "")},
			`route "same": duplicate route id`,
		},
		{
			"duplicate host and prefix",
			[]Route{testRoute("one", "example.com", "/api/"), testRoute("two", "EXAMPLE.com", "/api/")},
			`routes "one" and "two" both match host "example.com" with path prefix "/api/"`,
		},
		{
			"duplicate star routes, one written as empty host",
			[]Route{testRoute("one", "*", ""), testRoute("two", "", "")},
			`routes "one" and "two" both match host "*" with path prefix ""`,
		},
		{
			"default id clashes with an explicit one",
			[]Route{testRoute("*,/x", "*", "/y"), testRoute("", "*", "/x")},
			`route "*,/x": duplicate route id`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTable(tt.routes)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewTable error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestTableIsImmutable(t *testing.T) {
	routes := []Route{testRoute("r", "*", "/a")}
	routes[0].SetHeaders = http.Header{"X-A": {"1"}}
	table, err := NewTable(routes)
	if err != nil {
		t.Fatal(err)
	}
	// Changing the caller's routes, or what Routes returned, must not
	// change the table.
	routes[0].PathPrefix = "/changed"
	routes[0].Backends[0].URL.Host = "changed:1"
	routes[0].SetHeaders.Set("X-A", "changed")
	listed := table.Routes()
	listed[0].Backends[0].URL.Host = "changed:2"

	route, ok := table.Match("h", "/a")
	if !ok {
		t.Fatal("no match after changing the caller's routes")
	}
	if route.Backends[0].URL.Host != "127.0.0.1:8000" || route.SetHeaders.Get("X-A") != "1" {
		t.Errorf("table changed through a shared pointer: %+v", route)
	}
}

func TestTableConcurrentMatch(t *testing.T) {
	table, err := NewTable([]Route{testRoute("a", "*", "/a"), testRoute("b", "b.com", "")})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				table.Match("b.com:80", "/x")
				table.Match("c.com", "/a/b")
				table.Routes()
			}
		})
	}
	wg.Wait()
}
