package proxy

import (
	"bufio"
	"io"
	"net/http"
	"reflect"
	"testing"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/internal/testutil"
)

// The CORS headers a client sees on an auto_cross_origin route, checked
// against what Pushpin 1.36 sent for the same requests.

// corsHeaders picks the headers CORS is about from a response.
func corsHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for _, name := range []string{
		"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
		"Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
		"Access-Control-Expose-Headers", "Access-Control-Max-Age", "Vary",
	} {
		if v := h.Values(name); len(v) > 0 {
			out[name] = v[0]
			for _, more := range v[1:] {
				out[name] += ", " + more
			}
		}
	}
	return out
}

func TestAutoCrossOriginPlain(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Custom", "1")
		w.Header().Set("Set-Cookie", "a=b")
		if r.URL.Path == "/own" {
			w.Header().Set("Access-Control-Allow-Origin", "https://fixed.example")
			w.Header().Set("Access-Control-Max-Age", "60")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		io.WriteString(w, "plain")
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{route: Route{AutoCrossOrigin: true}})
	// The backend's Date passes through and is listed, as Pushpin lists it.
	const expose = "Date, Set-Cookie, X-Custom, X-Request-Id"
	tests := []struct {
		name       string
		method     string
		path       string
		header     http.Header
		wantStatus int
		want       map[string]string
	}{
		{
			name: "no Origin: any origin", method: "GET", path: "/",
			wantStatus: 200,
			want: map[string]string{
				"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods":  "OPTIONS, HEAD, GET, POST, PUT, DELETE",
				"Access-Control-Expose-Headers": expose, "Access-Control-Max-Age": "3600",
			},
		},
		{
			name: "Origin is echoed", method: "GET", path: "/",
			header:     http.Header{"Origin": {"https://app.example"}},
			wantStatus: 200,
			want: map[string]string{
				"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods":  "OPTIONS, HEAD, GET, POST, PUT, DELETE",
				"Access-Control-Expose-Headers": expose, "Access-Control-Max-Age": "3600", "Vary": "Origin",
			},
		},
		{
			name: "preflight: forwarded, requested method and headers echoed", method: "OPTIONS", path: "/",
			header: http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"PUT"},
				"Access-Control-Request-Headers": {"X-A, content-type", "X-B"}},
			wantStatus: http.StatusNoContent,
			want: map[string]string{
				"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods": "PUT", "Access-Control-Allow-Headers": "X-A, content-type, X-B",
				"Access-Control-Expose-Headers": expose, "Access-Control-Max-Age": "3600", "Vary": "Origin",
			},
		},
		{
			name: "the backend's own CORS headers win", method: "GET", path: "/own",
			header:     http.Header{"Origin": {"https://app.example"}},
			wantStatus: 200,
			want: map[string]string{
				"Access-Control-Allow-Origin": "https://fixed.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods":  "OPTIONS, HEAD, GET, POST, PUT, DELETE",
				"Access-Control-Expose-Headers": expose, "Access-Control-Max-Age": "60",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, f.proxy.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != nil {
				req.Header = tt.header
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			readAll(t, resp)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := corsHeaders(resp.Header); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("CORS headers\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestNoCORSWithoutAutoCrossOrigin(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "plain") })
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	resp := get(t, f.proxy.URL+"/", map[string]string{"Origin": "https://app.example"})
	readAll(t, resp)
	if got := corsHeaders(resp.Header); len(got) != 0 {
		t.Errorf("a route without auto_cross_origin sent %v", got)
	}
}

// Held and streamed responses, and gripd's own errors, get the headers too.
func TestAutoCrossOriginHolds(t *testing.T) {
	origin := map[string]string{"Origin": "https://app.example"}
	wantCORS := func(expose string) map[string]string {
		m := map[string]string{
			"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Credentials": "true",
			"Access-Control-Allow-Methods": "OPTIONS, HEAD, GET, POST, PUT, DELETE",
			"Access-Control-Max-Age":       "3600", "Vary": "Origin",
		}
		if expose != "" {
			m["Access-Control-Expose-Headers"] = expose
		}
		return m
	}
	aco := fixtureOpts{route: Route{AutoCrossOrigin: true}}

	t.Run("long-poll, published", func(t *testing.T) {
		b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Grip-Hold", "response")
			w.Header().Set("Grip-Channel", "lp-cors")
			w.Header().Set("X-Custom", "1")
			io.WriteString(w, "timeout\n")
		})
		f := newFixture(t, []string{b.URL}, aco)
		done := make(chan *http.Response, 1)
		go func() { done <- get(t, f.proxy.URL+"/", origin) }()
		testutil.WaitSubscribers(t, f.hub, "lp-cors", 1)
		f.hub.Deliver([]grip.Item{{Channel: "lp-cors", HTTPResponse: &grip.HTTPResponseFormat{
			Action: grip.ActionSend, Header: http.Header{"X-Pub": {"1"}}, Body: []byte("pub\n")}}})
		resp := <-done
		if body := readAll(t, resp); resp.StatusCode != 200 || body != "pub\n" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if got, want := corsHeaders(resp.Header), wantCORS("Date, X-Custom, X-Pub, X-Request-Id"); !reflect.DeepEqual(got, want) {
			t.Errorf("CORS headers\n got %v\nwant %v", got, want)
		}
	})

	t.Run("stream", func(t *testing.T) {
		b := testutil.StreamBackend(t, "st-cors", http.Header{"X-Custom": {"1"}})
		f := newFixture(t, []string{b.URL}, aco)
		resp := get(t, f.proxy.URL+"/", origin)
		defer resp.Body.Close()
		if line, err := bufio.NewReader(resp.Body).ReadString('\n'); resp.StatusCode != 200 || line != ":held\n" {
			t.Fatalf("got %d %q %v", resp.StatusCode, line, err)
		}
		if got, want := corsHeaders(resp.Header), wantCORS("Date, X-Custom, X-Request-Id"); !reflect.DeepEqual(got, want) {
			t.Errorf("CORS headers\n got %v\nwant %v", got, want)
		}
	})

	t.Run("instruct response without hold", func(t *testing.T) {
		b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", grip.InstructContentType)
			io.WriteString(w, `{"response":{"code":201,"headers":{"X-In":"1"},"body":"made"}}`)
		})
		f := newFixture(t, []string{b.URL}, aco)
		resp := get(t, f.proxy.URL+"/", origin)
		if body := readAll(t, resp); resp.StatusCode != 201 || body != "made" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if got, want := corsHeaders(resp.Header), wantCORS("X-In, X-Request-Id"); !reflect.DeepEqual(got, want) {
			t.Errorf("CORS headers\n got %v\nwant %v", got, want)
		}
	})

	t.Run("gripd's 502", func(t *testing.T) {
		f := newFixture(t, []string{closedPortURL(t)}, aco)
		resp := get(t, f.proxy.URL+"/", origin)
		if body := readAll(t, resp); resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if got, want := corsHeaders(resp.Header), wantCORS("X-Content-Type-Options, X-Request-Id"); !reflect.DeepEqual(got, want) {
			t.Errorf("CORS headers\n got %v\nwant %v", got, want)
		}
	})
}

func TestApplyCORSKeepsBackendHeaders(t *testing.T) {
	resp := http.Header{
		"Access-Control-Allow-Methods":     {"GET"},
		"Access-Control-Allow-Headers":     {"X-Only"},
		"Access-Control-Expose-Headers":    {"X-Mine"},
		"Access-Control-Allow-Credentials": {"false"},
		"X-Other":                          {"1"},
	}
	if got := corsExposable(http.Header{"Connection": {"close"}, "Transfer-Encoding": {"chunked"},
		"Content-Type": {"text/plain"}, "Grip-Hold": {"stream"}, "X-B": {"1"}, "X-A": {"2"}}); !reflect.DeepEqual(got, []string{"X-A", "X-B"}) {
		t.Errorf("corsExposable = %q, want [X-A X-B]", got)
	}
	applyCORS(http.Header{"Access-Control-Request-Headers": {"X-Asked"}, "Access-Control-Request-Method": {"PUT"}}, resp)
	want := map[string]string{
		"Access-Control-Allow-Methods": "GET", "Access-Control-Allow-Headers": "X-Only",
		"Access-Control-Expose-Headers": "X-Mine", "Access-Control-Allow-Credentials": "false",
		"Access-Control-Allow-Origin": "*", "Access-Control-Max-Age": "3600",
	}
	if got := corsHeaders(resp); !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}
