package proxy

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/internal/testutil"
)

// streamAnswer answers with a stream hold on channel (prev-id prev when
// set), a next link when link is set, and body.
func streamAnswer(w http.ResponseWriter, channel, prev, link, body string) {
	v := channel
	if prev != "" {
		v += "; prev-id=" + prev
	}
	w.Header().Set("Grip-Hold", "stream")
	w.Header().Set("Grip-Channel", v)
	if link != "" {
		w.Header().Set("Grip-Link", link)
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, body)
}

// lineReader reads a held stream line by line.
type lineReader struct {
	t *testing.T
	s *testutil.Stream
}

func openStream(t *testing.T, u string) (*http.Response, *lineReader) {
	t.Helper()
	s := testutil.OpenStream(t, u, nil)
	if s.Response.StatusCode != 200 {
		t.Fatalf("stream answered %d", s.Response.StatusCode)
	}
	return s.Response, &lineReader{t, s}
}

// streamAt opens u with the Host header the route matches on.
func streamAt(t *testing.T, u, host string) *lineReader {
	t.Helper()
	return &lineReader{t, testutil.OpenStream(t, u, http.Header{"Host": {host}})}
}

// expect reads the next lines and checks them.
func (lr *lineReader) expect(lines ...string) {
	lr.t.Helper()
	for _, want := range lines {
		if got := lr.s.ReadLine(); got != want+"\n" {
			lr.t.Fatalf("stream line %q, want %q", got, want)
		}
	}
}

// expectEnd checks that the stream ends cleanly with nothing more.
func (lr *lineReader) expectEnd() {
	lr.t.Helper()
	if rest := lr.s.ReadToEnd(); rest != "" {
		lr.t.Fatalf("after the last line: %q; want a clean end", rest)
	}
}

func streamItemID(channel, id, prev, content string) grip.Item {
	it := streamItem(channel, content)
	it.ID, it.PrevID = id, prev
	return it
}

func TestStreamOutOfStepFetchesTheNextLink(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/feed":
			streamAnswer(w, "st-step", "1", "</next?from=1>; rel=next", "hello\n")
		case "/next":
			streamAnswer(w, "st-step", "2", "</next?from=2>; rel=next", "missed 2\n")
		}
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{})
	lastIDIs(t, f, "st-step", "2")
	_, lr := openStream(t, f.proxy.URL+"/feed")
	lr.expect("hello", "missed 2")
	testutil.WaitFor(t, "the stream held again", func() bool { return f.hub.SubscriberCount("st-step") == 2 })
	f.hub.Deliver([]grip.Item{streamItemID("st-step", "3", "2", "three\n")})
	lr.expect("three")
	reqs := rb.requests()
	if len(reqs) != 2 || reqs[1].method != "GET" || reqs[1].path != "/next?from=1" || !slices.Equal(reqs[1].gripLast, []string{"st-step; last-id=1"}) {
		t.Fatalf("backend saw %+v; want the link fetched with Grip-Last st-step; last-id=1", reqs)
	}
}

func TestStreamItemOutOfChainFetchesTheNextLink(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/feed" {
			// The client resumes from a0; gripd has not seen the channel yet,
			// so it cannot tell that a1 came meanwhile.
			streamAnswer(w, "a-chain", "a0", "</next>; rel=next", "")
			return
		}
		// The answer covers what the client missed and moves the chain on.
		streamAnswer(w, "a-chain", "a2", "</next>; rel=next", "a1\na2\n")
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{})
	_, lr := openStream(t, f.proxy.URL+"/feed")
	testutil.WaitSubscribers(t, f.hub, "a-chain", 1)
	// a2 follows a1, which this client never saw.
	f.hub.Deliver([]grip.Item{streamItemID("a-chain", "a2", "a1", "a2 (direct)\n")})
	lr.expect("a1", "a2")
	testutil.WaitFor(t, "the link answered", func() bool { return len(rb.requests()) == 2 })
	if got := rb.requests()[1].gripLast; !slices.Equal(got, []string{"a-chain; last-id=a0"}) {
		t.Fatalf("link Grip-Last %v, want a-chain; last-id=a0", got)
	}
	f.hub.Deliver([]grip.Item{streamItemID("a-chain", "a3", "a2", "a3\n")})
	lr.expect("a3")
}

func TestNextLinkRetriesWithBackoffBeforeData(t *testing.T) {
	const delay = 20 * time.Millisecond
	var times []time.Time
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/feed":
			w.Header().Set("Grip-Link", "</flaky>; rel=next")
			w.Header().Set("Grip-Hold", "stream")
			w.Header().Set("Grip-Channel", "flaky; prev-id=0")
			io.WriteString(w, "start\n")
		case n < 3: // the first two fetches fail
			times = append(times, time.Now())
			http.Error(w, "down", http.StatusServiceUnavailable)
		default:
			times = append(times, time.Now())
			io.WriteString(w, "flaky-ok\n") // no hold, no link: the end
		}
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{linkRetryDelay: delay})
	lastIDIs(t, f, "flaky", "1") // out of step at once: the link is due
	_, lr := openStream(t, f.proxy.URL+"/feed")
	lr.expect("start", "flaky-ok")
	lr.expectEnd()
	if len(times) != 3 {
		t.Fatalf("link fetched %d times, want 3", len(times))
	}
	// Backoff: at least the delay, then at least twice it.
	if d1, d2 := times[1].Sub(times[0]), times[2].Sub(times[1]); d1 < delay || d2 < 2*delay {
		t.Fatalf("retries after %v and %v, want at least %v and %v", d1, d2, delay, 2*delay)
	}
}

func TestNextLinkGivesUpAfterRetries(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/feed" {
			streamAnswer(w, "gone", "0", "</down>; rel=next", "start\n")
			return
		}
		http.Error(w, "down", http.StatusBadGateway)
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{linkRetryDelay: time.Millisecond})
	lastIDIs(t, f, "gone", "1")
	_, lr := openStream(t, f.proxy.URL+"/feed")
	lr.expect("start")
	lr.expectEnd()
	if n := len(rb.requests()); n != 1+1+linkRetries {
		t.Fatalf("backend saw %d requests, want the feed and %d tries of the link", n, 1+linkRetries)
	}
	testutil.WaitSubscribers(t, f.hub, "gone", 1) // the watcher only
}

func TestNextLinkWithoutHoldIsFollowedUntilNoLink(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/pages": // no hold at all: a response with a link streams too
			w.Header().Set("Grip-Link", "</page?n=2>; rel=next")
			w.Header().Set("X-First", "yes")
			io.WriteString(w, "page 1\n")
		case "/page":
			if r.URL.Query().Get("n") == "2" {
				w.Header().Set("Grip-Link", "<page?n=3>; rel=next") // relative to /page
			}
			io.WriteString(w, "page "+r.URL.Query().Get("n")+"\n")
		}
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{})
	resp, lr := openStream(t, f.proxy.URL+"/pages")
	if resp.Header.Get("X-First") != "yes" || resp.Header.Get("Grip-Link") != "" {
		t.Fatalf("headers %v", resp.Header)
	}
	lr.expect("page 1", "page 2", "page 3")
	lr.expectEnd()
}

func TestNextLinkPolledEveryTimeout(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		streamAnswer(w, "polled", "", "</poll>; rel=next; timeout=1", r.URL.Path+"\n")
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{})
	_, lr := openStream(t, f.proxy.URL+"/feed")
	// Nothing is published: the link is fetched every second.
	lr.expect("/feed", "/poll", "/poll")
	reqs := rb.requests()
	if len(reqs) < 3 || reqs[1].path != "/poll" || len(reqs[1].gripLast) != 0 {
		t.Fatalf("backend saw %+v", reqs)
	}
}

func TestStreamHintFetchesTheNextLink(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		streamAnswer(w, "hinted", "", "</more>; rel=next", r.URL.Path+"\n")
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{})
	_, lr := openStream(t, f.proxy.URL+"/feed")
	lr.expect("/feed")
	testutil.WaitSubscribers(t, f.hub, "hinted", 1)
	f.hub.Deliver([]grip.Item{{Channel: "hinted", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionHint}}})
	lr.expect("/more")
	testutil.WaitSubscribers(t, f.hub, "hinted", 1)
	f.hub.Recover()
	lr.expect("/more")
}

func TestStreamWithoutLinkIgnoresHints(t *testing.T) {
	b := testutil.StreamBackend(t, "nolink", nil)
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	_, lr := openStream(t, f.proxy.URL+"/")
	lr.expect(":held", "")
	testutil.WaitSubscribers(t, f.hub, "nolink", 1)
	f.hub.Deliver([]grip.Item{
		{Channel: "nolink", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionHint}},
		streamItem("nolink", "after the hint\n"),
	})
	lr.expect("after the hint")
}

func TestStreamPrevIDWithoutLinkEnds(t *testing.T) {
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		streamAnswer(w, "nolink-prev", "1", "", "initial\n")
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{})
	_, lr := openStream(t, f.proxy.URL+"/")
	lr.expect("initial")
	lr.expectEnd()
}

func TestStreamBuildIDOnBodiesAndItems(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Grip-Set-Meta", `id_format="<%(bid)s>"`)
		if r.URL.Path == "/feed" {
			w.Header().Set("Grip-Channel", "bid; prev-id=1; filter=build-id")
		} else {
			w.Header().Set("Grip-Channel", "bid; prev-id=5; filter=build-id")
		}
		w.Header().Set("Grip-Hold", "stream")
		w.Header().Set("Grip-Link", "</next>; rel=next")
		io.WriteString(w, r.URL.Path+" at %I, literal %(x)I\n")
	})
	f := newFixture(t, []string{rb.url}, fixtureOpts{})
	_, lr := openStream(t, f.proxy.URL+"/feed")
	lr.expect("/feed at <1>, literal x")
	testutil.WaitSubscribers(t, f.hub, "bid", 1)
	f.hub.Deliver([]grip.Item{streamItemID("bid", "2", "1", "item %I\n")})
	lr.expect("item <2>")
	f.hub.Deliver([]grip.Item{{Channel: "bid", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionHint}}})
	lr.expect("/next at <5>, literal x")
}

// A next link to a host listed in links.allow_hosts is fetched as it is,
// unsigned.
func TestNextLinkToAnAllowedHostIsFetchedUnsigned(t *testing.T) {
	var sig string
	other := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		sig = r.Header.Get("Grip-Sig") + r.Header.Get("Grip-Feature")
		io.WriteString(w, "from elsewhere\n")
	})
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Grip-Link", "<"+other.URL+"/x>; rel=next")
		io.WriteString(w, "here\n")
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{route: Route{Host: "only.example"},
		linkHosts: []string{strings.TrimPrefix(other.URL, "http://")}})
	lr := streamAt(t, f.proxy.URL+"/", "only.example")
	lr.expect("here", "from elsewhere")
	lr.expectEnd()
	if sig != "" {
		t.Fatalf("the unrouted host got Grip headers: %q", sig)
	}
}

func TestNextLinkThroughItsRouteIsSigned(t *testing.T) {
	var got http.Header
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			// A relative link is in the backend's view: /more, as the
			// backend sees the request (/feed, after the rewrite).
			w.Header().Set("Grip-Link", "</more>; rel=next")
			io.WriteString(w, "first\n")
			return
		}
		got = r.Header.Clone()
		io.WriteString(w, "more at "+r.URL.Path+"\n")
	})
	prefix := "/"
	f := newFixture(t, []string{rb.url}, fixtureOpts{route: Route{PathPrefix: "/api/", ReplacePrefix: &prefix}})
	_, lr := openStream(t, f.proxy.URL+"/api/feed")
	lr.expect("first", "more at /more")
	if got.Get("Grip-Sig") == "" || !strings.Contains(got.Get("Grip-Feature"), "link:next") || got.Get("X-Request-Id") == "" {
		t.Fatalf("link request headers %v", got)
	}
}

// A relative link resolves against the backend request and goes through
// the route that served the request, never to the host the client named
// in its Host header (SSRF).
func TestRelativeNextLinkNeverUsesTheClientHost(t *testing.T) {
	var internalHits atomic.Int32
	internal := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		internalHits.Add(1)
		io.WriteString(w, "internal secret\n")
	})
	key := []byte("route-key")
	var sig atomic.Pointer[string]
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/feed":
			streamAnswer(w, "ssrf", "1", "</next>; rel=next", "hello\n")
		case "/next":
			v := r.Header.Get("Grip-Sig")
			sig.Store(&v)
			streamAnswer(w, "ssrf", "2", "<next2>; rel=next", "from the backend\n")
		default:
			io.WriteString(w, "unexpected "+r.URL.Path+"\n")
		}
	})
	// The route matches any host under /api/; /next matches no route.
	f := newFixture(t, []string{rb.url}, fixtureOpts{route: Route{PathPrefix: "/api/", SigKey: key}})
	lastIDIs(t, f, "ssrf", "2")
	internalHost := strings.TrimPrefix(internal.URL, "http://")
	lr := streamAt(t, f.proxy.URL+"/api/feed", internalHost)
	if code := lr.s.Response.StatusCode; code != 200 {
		t.Fatalf("stream answered %d", code)
	}
	lr.expect("hello", "from the backend")
	testutil.WaitSubscribers(t, f.hub, "ssrf", 2) // the watcher and the stream, held again
	reqs := rb.requests()
	if len(reqs) != 2 || reqs[1].path != "/next" || !slices.Equal(reqs[1].gripLast, []string{"ssrf; last-id=1"}) {
		t.Fatalf("backend saw %+v; want /next with Grip-Last ssrf; last-id=1", reqs)
	}
	if p := sig.Load(); p == nil {
		t.Fatal("no Grip-Sig seen")
	} else if _, err := grip.ValidateSig(*p, key); err != nil {
		t.Fatalf("link Grip-Sig %q: %v", *p, err)
	}
	if n := internalHits.Load(); n != 0 {
		t.Fatalf("the host of the client's Host header got %d requests", n)
	}
}

// A relative link after a relative link stays on the route too, resolved
// against the previous link's path.
func TestRelativeNextLinkChainStaysOnTheRoute(t *testing.T) {
	rb := newRecordingBackend(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 0:
			w.Header().Set("Grip-Link", "<page/2>; rel=next")
			io.WriteString(w, "one\n")
		case 1:
			w.Header().Set("Grip-Link", "<3>; rel=next")
			io.WriteString(w, "two at "+r.URL.Path+"\n")
		default:
			io.WriteString(w, "three at "+r.URL.Path+"\n")
		}
	})
	prefix := "/"
	f := newFixture(t, []string{rb.url}, fixtureOpts{route: Route{Host: "public.example", PathPrefix: "/v1/", ReplacePrefix: &prefix}})
	lr := streamAt(t, f.proxy.URL+"/v1/list/", "public.example")
	lr.expect("one", "two at /list/page/2", "three at /list/page/3")
	lr.expectEnd()
}

// A backend that builds its next link from the request path gives the
// client the link's host ("//127.0.0.1:port/secret" is absolute): gripd
// follows links only to the route table's hosts and links.allow_hosts,
// so the client cannot make it fetch a host of its choosing.
func TestNextLinkToAHostOutsideTheRouteTableIsRefused(t *testing.T) {
	var reached atomic.Int32
	secret := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.WriteString(w, "secret\n")
	})
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Grip-Link", "<"+r.URL.Query().Get("next")+">; rel=next") // from the client
		io.WriteString(w, "here\n")
	})
	obs := newRecorder()
	f := newFixture(t, []string{b.URL}, fixtureOpts{route: Route{ID: "r", Host: "only.example"}, observer: obs})
	secretHost := strings.TrimPrefix(secret.URL, "http://")
	for _, next := range []string{"//" + secretHost + "/secret", secret.URL + "/secret"} {
		lr := streamAt(t, f.proxy.URL+"/?next="+next, "only.example")
		lr.expect("here")
		lr.expectEnd()
		lr.s.Close()
		obs.expectSkipping(t, "link r refused")
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the client's host got %d requests", n)
	}
}

// Next links answered without a hold are followed at most
// limits.max_links_without_hold in a row; then the stream ends, counted.
func TestNextLinksWithoutHoldAreCapped(t *testing.T) {
	var fetched atomic.Int32
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Header().Set("Grip-Link", "</again>; rel=next") // never a hold: a loop
		io.WriteString(w, "page\n")
	})
	obs := newRecorder()
	f := newFixture(t, []string{b.URL}, fixtureOpts{route: Route{ID: "r"}, observer: obs,
		limits: Limits{MaxLinksWithoutHold: 5, LinkInterval: time.Millisecond}})
	_, lr := openStream(t, f.proxy.URL+"/")
	lr.expect("page", "page", "page", "page", "page", "page")
	lr.expectEnd()
	if n := fetched.Load(); n != 6 {
		t.Fatalf("backend got %d requests, want 6: the first and 5 links", n)
	}
	obs.expectSkipping(t, "link r capped")
}

// Links followed in a row without a hold are paced per stream: after the
// first linkBurst, one per limits.link_interval.
func TestNextLinksWithoutHoldArePaced(t *testing.T) {
	const interval, links = 40 * time.Millisecond, linkBurst + 10
	var n atomic.Int32
	b := testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= links {
			w.Header().Set("Grip-Link", "</again>; rel=next")
		}
		io.WriteString(w, "page\n")
	})
	f := newFixture(t, []string{b.URL}, fixtureOpts{limits: Limits{LinkInterval: interval}})
	start := time.Now()
	_, lr := openStream(t, f.proxy.URL+"/")
	for range links + 1 {
		lr.expect("page")
	}
	lr.expectEnd()
	// A lower bound only: a slow machine takes longer, never shorter.
	if took, least := time.Since(start), (links-linkBurst-1)*interval; took < least {
		t.Fatalf("%d links without a hold took %v, want at least %v", links, took, least)
	}
}
