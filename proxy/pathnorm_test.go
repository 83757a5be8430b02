package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gripd/gripd/internal/testutil"
)

func TestNormalizePath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"/", "/", true},
		{"/a/b", "/a/b", true},
		{"/a/b/", "/a/b/", true},
		{"/public/../secret.txt", "/secret.txt", true},
		{"/public/./file", "/public/file", true},
		{"/public/%2e%2e/secret.txt", "/secret.txt", true},
		{"/public/%2E%2e/secret.txt", "/secret.txt", true},
		{"/public/.%2e/secret.txt", "/secret.txt", true},
		{"/public/%2e/file", "/public/file", true},
		{"/a/b/..", "/a/", true},
		{"/a/b/.", "/a/b/", true},
		{"/..", "/", true},
		{"/../../etc/passwd", "/etc/passwd", true},
		{"/a//../b", "/a/b", true},
		{"/a%20b/c%2Fd", "/a%20b/c%2Fd", true}, // an encoded slash without dots is data, kept as sent
		{"/a..b/...", "/a..b/...", true},
		{"/file.txt", "/file.txt", true},
		{"/%252e%252e/x", "/%252e%252e/x", true}, // decoded once, as every hop does
		{"*", "*", true},
		{"/public/..%2fsecret.txt", "", false},
		{"/public/..%2Fsecret.txt", "", false},
		{"/public/%2e%2e%2fsecret.txt", "", false},
		{"/public/%2f..%2fsecret", "", false},
		{"/public/..%5csecret.txt", "", false},
		{`/public/..\secret.txt`, "", false},
		{"/public/..;/secret.txt", "", false},
		{"/public/.;x/secret.txt", "", false},
		{"/public/%zz", "", false},
	} {
		got, ok := normalizePath(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("normalizePath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// A path_prefix route cannot be left with dot segments, however they are
// spelled: the route is chosen on the normalized path and the backend gets
// that path; an encoding whose meaning backends disagree on is refused.
func TestPathPrefixRouteCannotBeEscapedWithDotSegments(t *testing.T) {
	public := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("public " + r.URL.EscapedPath()))
	})
	other := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("other " + r.URL.EscapedPath()))
	})
	pub, oth := mustURL(t, public.URL), mustURL(t, other.URL)
	table, err := NewTable([]Route{
		{ID: "public", Host: "files.local", PathPrefix: "/public/", Backends: []Backend{{URL: pub}}},
		{ID: "other", Host: "*", Backends: []Backend{{URL: oth}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, []string{other.URL}, fixtureOpts{route: Route{ID: "x"}})
	f.srv.SetTable(table)

	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/public/file.txt", 200, "public /public/file.txt"},
		{"/public/./file.txt", 200, "public /public/file.txt"},
		{"/public/a/../file.txt", 200, "public /public/file.txt"},
		// Out of /public/: not the public route (files.local has no other
		// route, so no route at all), and never /public/../ at a backend.
		{"/public/../secret.txt", 502, ""},
		{"/public/%2e%2e/secret.txt", 502, ""},
		{"/public/..%2fsecret.txt", 400, ""},
		{"/public/..%5Csecret.txt", 400, ""},
		{"/public/..;/secret.txt", 400, ""},
	} {
		req, err := http.NewRequest("GET", f.proxy.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "files.local"
		req.URL.Opaque = tc.path // sent as it is, dots and all
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		body := readAll(t, resp)
		if resp.StatusCode != tc.code || (tc.body != "" && body != tc.body) {
			t.Errorf("GET %s: %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.code, tc.body)
		}
		if strings.Contains(body, "..") {
			t.Errorf("GET %s: a backend got dot segments: %q", tc.path, body)
		}
	}
}

// FuzzNormalizePath checks that a path normalizePath accepts has no dot
// segment left however a backend reads separators, starts with "/" when
// the input did, and is its own normalization.
//
// The seed corpus is in testdata/fuzz/FuzzNormalizePath.
func FuzzNormalizePath(f *testing.F) {
	f.Fuzz(func(t *testing.T, p string) {
		norm, ok := normalizePath(p)
		if !ok {
			return
		}
		if !strings.HasPrefix(p, "/") {
			if norm != p {
				t.Fatalf("normalizePath(%q) = %q: changed a path that is not absolute", p, norm)
			}
			return
		}
		if !strings.HasPrefix(norm, "/") {
			t.Fatalf("normalizePath(%q) = %q: not absolute", p, norm)
		}
		dec, err := url.PathUnescape(norm)
		if err != nil {
			t.Fatalf("normalizePath(%q) = %q: not valid escaping: %v", p, norm, err)
		}
		for _, part := range strings.FieldsFunc(dec, func(r rune) bool { return r == '/' || r == '\\' }) {
			if part, _, _ = strings.Cut(part, ";"); part == "." || part == ".." {
				t.Fatalf("normalizePath(%q) = %q: still has a dot segment", p, norm)
			}
		}
		if again, ok := normalizePath(norm); !ok || again != norm {
			t.Fatalf("normalizePath(%q) = %q, but normalizing that gives %q, %v", p, norm, again, ok)
		}
	})
}

// A host written with its trailing dot ("files.local.", fully qualified)
// is the same host: its own routes apply, never the "*" ones.
func TestTrailingDotHostMatchesItsOwnRoutes(t *testing.T) {
	public := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("public")) })
	other := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("other")) })
	table, err := NewTable([]Route{
		{ID: "public", Host: "files.local", PathPrefix: "/public/", Backends: []Backend{{URL: mustURL(t, public.URL)}}},
		{ID: "other", Host: "*", Backends: []Backend{{URL: mustURL(t, other.URL)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, []string{other.URL}, fixtureOpts{route: Route{ID: "x"}})
	f.srv.SetTable(table)
	for _, tc := range []struct {
		host, path string
		code       int
		body       string
	}{
		{"files.local.", "/public/a", 200, "public"},
		{"FILES.local.:80", "/public/a", 200, "public"},
		{"files.local.", "/secret.txt", 502, "No route for host: files.local\n"},
	} {
		resp := get(t, f.proxy.URL+tc.path, map[string]string{"Host": tc.host})
		if body := readAll(t, resp); resp.StatusCode != tc.code || body != tc.body {
			t.Errorf("Host %s %s: %d %q, want %d %q", tc.host, tc.path, resp.StatusCode, body, tc.code, tc.body)
		}
	}
}
