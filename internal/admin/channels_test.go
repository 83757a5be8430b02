package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/testutil"
	"github.com/gripd/gripd/publish"
)

// subscribe holds a subscriber of kind on channels until the test ends.
func subscribe(t *testing.T, hub *handoff.Hub, kind handoff.Kind, channels ...string) {
	t.Helper()
	s := hub.Subscribe(kind, channels)
	t.Cleanup(func() { hub.Unsubscribe(s) })
}

// getJSON GETs path and decodes the JSON reply into v.
func getJSON(t *testing.T, h http.Handler, path string, v any) int {
	t.Helper()
	code, body := get(t, h, "GET", path)
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %d %q: %v", path, code, body, err)
	}
	return code
}

// names lists the channel names of a reply, in order.
func names(r channelsReply) string {
	var out []string
	for _, c := range r.Channels {
		out = append(out, c.Name)
	}
	return strings.Join(out, ",")
}

func TestChannelsOrderAndPaging(t *testing.T) {
	f := testAdmin(t, nil)
	subscribe(t, f.hub, handoff.KindStream, "a")
	subscribe(t, f.hub, handoff.KindResponse, "b", "c", "d")
	subscribe(t, f.hub, handoff.KindWebSocket, "b", "c", "d")
	subscribe(t, f.hub, handoff.KindWebSocket, "c", "b")
	subscribe(t, f.hub, handoff.KindWebSocket) // on no channel

	// b and c tie at 3 (name decides), then d with 2, then a with 1.
	code, body := get(t, f.a, "GET", "/channels")
	want := `{"scope":"local","instances":1,"total_channels":4,"offset":0,"limit":100,"channels":[` +
		`{"name":"b","response":1,"stream":0,"ws":2,"total":3},` +
		`{"name":"c","response":1,"stream":0,"ws":2,"total":3},` +
		`{"name":"d","response":1,"stream":0,"ws":1,"total":2},` +
		`{"name":"a","response":0,"stream":1,"ws":0,"total":1}]}` + "\n"
	if code != 200 || body != want {
		t.Fatalf("GET /channels: %d %s\nwant %s", code, body, want)
	}

	for _, tc := range []struct {
		query, names string
		next         *int
	}{
		{"limit=2", "b,c", ptr(2)},
		{"limit=2&offset=2", "d,a", nil},
		{"limit=3&offset=1", "c,d,a", nil},
		{"offset=3", "a", nil},
		{"offset=4", "", nil},
		{"offset=100", "", nil},
		{"scope=local&limit=1&offset=1", "c", ptr(2)},
	} {
		var r channelsReply
		if code := getJSON(t, f.a, "/channels?"+tc.query, &r); code != 200 {
			t.Errorf("%s: %d", tc.query, code)
			continue
		}
		if names(r) != tc.names || r.TotalChannels != 4 || (r.NextOffset == nil) != (tc.next == nil) ||
			(tc.next != nil && *r.NextOffset != *tc.next) {
			t.Errorf("%s: channels %q, total %d, next %v; want %q, 4, %v", tc.query, names(r), r.TotalChannels, r.NextOffset, tc.names, tc.next)
		}
	}
	// An empty page is an empty list, not null.
	if _, body := get(t, f.a, "GET", "/channels?offset=9"); !strings.Contains(body, `"channels":[]`) {
		t.Errorf("empty page: %s", body)
	}
}

func ptr(n int) *int { return &n }

func TestChannelsBadParameters(t *testing.T) {
	f := testAdmin(t, nil)
	for query, reason := range map[string]string{
		"limit=0":               `limit \"0\": want an integer from 1 to 1000`,
		"limit=1001":            `limit \"1001\"`,
		"limit=ten":             `limit \"ten\"`,
		"offset=-1":             `offset \"-1\"`,
		"offset=1.5":            `offset \"1.5\"`,
		"scope=world":           `scope \"world\": want local or cluster`,
		"instances=0":           `instances \"0\"`,
		"limit=%zz":             `query string`,
		"scope=cluster&limit=0": `limit`,
	} {
		for _, path := range []string{"/channels?", "/channels/news?"} {
			code, body := get(t, f.a, "GET", path+query)
			if code != 400 || !strings.HasPrefix(body, `{"reason":"`) || !strings.Contains(body, reason) {
				t.Errorf("%s%s: %d %s, want 400 mentioning %s", path, query, code, body, reason)
			}
		}
	}
	if code, body := get(t, f.a, "GET", "/channels/"); code != 400 || !strings.Contains(body, "no channel name") {
		t.Errorf("GET /channels/: %d %s", code, body)
	}
	if code, _ := get(t, f.a, "POST", "/channels"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /channels: %d, want 405", code)
	}
}

func TestChannelByName(t *testing.T) {
	f := testAdmin(t, nil)
	odd := "a/b c%d"
	subscribe(t, f.hub, handoff.KindStream, "news", odd)
	subscribe(t, f.hub, handoff.KindWebSocket, odd)

	for _, path := range []string{
		"/channels/a%2Fb%20c%25d", // every odd character escaped
		"/channels/a/b%20c%25d",   // a plain "/" works too
	} {
		code, body := get(t, f.a, "GET", path)
		want := `{"scope":"local","instances":1,"name":"a/b c%d","response":0,"stream":1,"ws":1,"total":2}` + "\n"
		if code != 200 || body != want {
			t.Errorf("GET %s: %d %s, want %s", path, code, body, want)
		}
	}
	code, body := get(t, f.a, "GET", "/channels/nobody%20here")
	if want := `{"reason":"nobody listens on channel \"nobody here\" on this instance"}` + "\n"; code != 404 || body != want {
		t.Errorf("unknown channel: %d %s, want 404 %s", code, body, want)
	}
	if code, _ := get(t, f.a, "GET", "/channels/a%2Fb"); code != 404 {
		t.Errorf("a prefix of a channel: %d, want 404", code)
	}
}

// Without NATS an instance is its own fleet; with NATS down, a cluster
// view cannot be had.
func TestChannelsClusterScopeWithoutNATS(t *testing.T) {
	f := testAdmin(t, nil)
	subscribe(t, f.hub, handoff.KindStream, "news")
	var r channelsReply
	if code := getJSON(t, f.a, "/channels?scope=cluster", &r); code != 200 || r.Scope != "cluster" || r.Instances != 1 || names(r) != "news" {
		t.Errorf("scope=cluster without NATS: %d %+v", code, r)
	}
	var one channelReply
	if code := getJSON(t, f.a, "/channels/news?scope=cluster", &one); code != 200 || one.Instances != 1 || one.Stream != 1 {
		t.Errorf("one channel, scope=cluster without NATS: %d %+v", code, one)
	}

	down := testAdmin(t, &fakeNATS{})
	for _, path := range []string{"/channels?scope=cluster", "/channels/news?scope=cluster"} {
		if code, body := get(t, down.a, "GET", path); code != 503 || !strings.Contains(body, "NATS is not connected") {
			t.Errorf("GET %s with NATS down: %d %s", path, code, body)
		}
	}
	// The local view needs no NATS.
	if code, _ := get(t, down.a, "GET", "/channels"); code != 200 {
		t.Errorf("local view with NATS down: %d", code)
	}
}

// Two instances on one NATS: either one's admin listener sums both.
func TestChannelsClusterScope(t *testing.T) {
	ns := testutil.StartNATS(t)
	instance := func() (*handoff.Hub, *Handler) {
		hub := handoff.NewHub(handoff.Config{})
		nb, err := publish.NewNATSBroker(publish.NATSConfig{URL: ns.ClientURL()}, hub, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nb.Close(); hub.Close() })
		api := publish.NewControlAPI(publish.ControlConfig{}, nb, zerolog.Nop())
		parts := Parts{Hub: hub, API: api, NATS: nb, Version: testVersion, Hosts: []string{"example.com"}}
		return hub, New(parts, NewMetrics(parts))
	}
	hubA, adminA := instance()
	hubB, adminB := instance()
	odd := "a/b c%d"
	subscribe(t, hubA, handoff.KindStream, "news", odd)
	subscribe(t, hubA, handoff.KindWebSocket, "news")
	subscribe(t, hubB, handoff.KindResponse, "news")
	subscribe(t, hubB, handoff.KindStream, "only-b")

	want := `{"scope":"cluster","instances":2,"total_channels":3,"offset":0,"limit":100,"channels":[` +
		`{"name":"news","response":1,"stream":1,"ws":1,"total":3},` +
		`{"name":"a/b c%d","response":0,"stream":1,"ws":0,"total":1},` +
		`{"name":"only-b","response":0,"stream":1,"ws":0,"total":1}]}` + "\n"
	for _, a := range []*Handler{adminA, adminB} {
		if code, body := get(t, a, "GET", "/channels?scope=cluster&instances=2"); code != 200 || body != want {
			t.Errorf("GET /channels?scope=cluster: %d %s\nwant %s", code, body, want)
		}
	}
	code, body := get(t, adminB, "GET", "/channels/a%2Fb%20c%25d?scope=cluster&instances=2")
	if want := `{"scope":"cluster","instances":2,"name":"a/b c%d","response":0,"stream":1,"ws":0,"total":1}` + "\n"; code != 200 || body != want {
		t.Errorf("one channel, cluster: %d %s, want %s", code, body, want)
	}
	code, body = get(t, adminA, "GET", "/channels/nope?scope=cluster&instances=2")
	if want := `{"reason":"nobody listens on channel \"nope\" on the 2 instances that answered"}` + "\n"; code != 404 || body != want {
		t.Errorf("unknown channel, cluster: %d %s, want %s", code, body, want)
	}
	// The local view of B is B's alone.
	var r channelsReply
	if getJSON(t, adminB, "/channels", &r); r.Scope != "local" || r.Instances != 1 || names(r) != "news,only-b" {
		t.Errorf("B's local view: %+v", r)
	}
}
