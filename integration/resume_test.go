package integration

// Resume from history: two gripd instances with JetStream history on a
// real nats-server (run with -js), 200 SSE clients that drop at random
// moments and come back, each time to a random instance, with
// Last-Event-ID (some with the lastEventId query parameter instead),
// while 2,000 items with ids are published through both control APIs
// (four to a request), one request in ten twice, through the other
// instance, as a publisher retrying after a timeout would.
// Every client must end with every item exactly once, in order.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gripd/gripd/internal/testutil"
)

const (
	resumeInstances = 2
	resumeClients   = 200
	resumeItems     = 2000
	resumeChannel   = "resume"
	// The publisher sends resumeBatch items per request, one request every
	// resumeEvery: about 13 s of publishing, long enough for every client
	// to drop and come back many times, and few enough requests that a
	// loaded machine keeps up.
	resumeBatch = 4
	resumeEvery = resumeBatch * 6500 * time.Microsecond
	// A client's connection lasts a random time in this range before the
	// client drops it (wherever the stream is, even inside an event).
	resumeMinLife, resumeMaxLife = 50 * time.Millisecond, 1500 * time.Millisecond

	resumeTimeout = 120 * time.Second // the whole test, once the binaries are built (about 50 s on a quiet machine; a loaded one needs more)
)

func TestResumeFromHistory(t *testing.T) {
	gripd := wsChatGripd(t)
	natsBin := buildNATSServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), resumeTimeout)
	t.Cleanup(cancel)
	start := time.Now()

	natsPort := testutil.FreePort(t)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	ns := startFleetProc(t, "nats-server (JetStream)", natsBin, "-a", "127.0.0.1", "-p", strconv.Itoa(natsPort), "-js", "-sd", t.TempDir())
	waitUntil(t, ctx, 15*time.Second, "nats-server to accept connections", func() (bool, string) {
		if ns.exited() {
			t.Fatalf("nats-server exited during start-up: %v\n%s", ns.waitErr, ns.out.String())
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", natsPort), time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	backend := startFleetBackend(t)

	lvl := os.Getenv("GRIPD_LOG_LEVEL")
	if lvl == "" {
		lvl = "info"
	}
	config := filepath.Join(t.TempDir(), "gripd.yaml")
	yaml := fmt.Sprintf("nats: {url: %q}\nhistory: {enabled: true, max_age: 10m, max_items_per_channel: 5000}\nroutes:\n  - backends: [\"http://%s\"]\n", natsURL, backend)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var proxies, controls []string
	var gripds []*fleetProc
	for i := range resumeInstances {
		listen, control := testutil.FreePort(t), testutil.FreePort(t)
		proxies = append(proxies, fmt.Sprintf("http://127.0.0.1:%d", listen))
		controls = append(controls, fmt.Sprintf("http://127.0.0.1:%d", control))
		gripds = append(gripds, startFleetProc(t, fmt.Sprintf("gripd %d", i), gripd, "--config", config,
			"--listen", fmt.Sprintf("127.0.0.1:%d", listen), "--control-listen", fmt.Sprintf("127.0.0.1:%d", control),
			"--admin-listen", "off", "--log-level", lvl))
	}
	h := &harness{t: t, ctx: ctx, client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	for i, g := range gripds {
		waitUntil(t, ctx, readyTimeout, fmt.Sprintf("gripd %d to proxy GET /plain and its control API to answer", i), func() (bool, string) {
			if g.exited() {
				t.Fatalf("gripd %d exited during start-up: %v\n%s", i, g.waitErr, g.out.String())
			}
			cs, _, _, cerr := h.get(controls[i] + "/")
			ps, _, _, perr := h.get(proxies[i] + "/plain")
			return cerr == nil && cs == 200 && perr == nil && ps == 200, fmt.Sprintf("control %d %v, proxy %d %v", cs, cerr, ps, perr)
		})
	}

	pub := &resumePublisher{ctx: ctx, controls: controls, http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}}
	t.Cleanup(pub.http.CloseIdleConnections)
	// Item 0 is where every client starts: its first connection already
	// resumes, after i0.
	if err := pub.publish(0, 0, 0); err != nil {
		t.Fatal(err)
	}

	streams := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
	t.Cleanup(streams.CloseIdleConnections)
	clients := make([]*resumeClient, resumeClients)
	var wg sync.WaitGroup
	for i := range clients {
		c := &resumeClient{id: i, query: i%4 == 0, last: "i0", proxies: proxies, http: streams,
			rnd: rand.New(rand.NewPCG(uint64(i), 42))}
		clients[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(ctx)
		}()
	}

	pubStart := time.Now()
	tick := time.NewTicker(resumeEvery)
	rnd := rand.New(rand.NewPCG(7, 7))
	for n := 1; n <= resumeItems; n += resumeBatch {
		<-tick.C
		last := min(n+resumeBatch-1, resumeItems)
		inst := rnd.IntN(resumeInstances)
		if err := pub.publish(n, last, inst); err != nil {
			t.Fatal(err)
		}
		if rnd.IntN(10) == 0 { // the retry of a publisher that timed out
			pub.repeated.Add(int64(last - n + 1))
			if err := pub.publish(n, last, (inst+1)%resumeInstances); err != nil {
				t.Fatal(err)
			}
		}
	}
	tick.Stop()
	pubTook := time.Since(pubStart)

	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-ctx.Done():
		<-allDone // the clients' requests end with ctx
		var behind []string
		for _, c := range clients {
			if !c.done.Load() && len(behind) < 5 {
				behind = append(behind, c.String())
			}
		}
		t.Fatalf("timed out waiting for the clients to get all %d items; e.g.\n  %s", resumeItems, strings.Join(behind, "\n  "))
	}

	var conns, delivered int64
	bad := 0
	for _, c := range clients {
		conns += c.conns
		delivered += int64(len(c.got))
		if err := c.check(); err != nil {
			bad++
			if bad <= 5 {
				t.Errorf("%v: %v", c, err)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d clients did not get every item exactly once, in order", bad, len(clients))
	}
	for i, g := range gripds {
		if g.exited() {
			t.Errorf("gripd %d exited: %v", i, g.waitErr)
		}
	}
	t.Logf("TestResumeFromHistory: %d clients each got all %d items exactly once, in order (%d deliveries) over %d connections "+
		"(%.1f per client, each a resume with Last-Event-ID on a random instance of %d); %d items published twice; "+
		"published in %v; %v in all after the binaries were built",
		len(clients), resumeItems, delivered, conns, float64(conns)/float64(len(clients)), resumeInstances,
		pub.repeated.Load(), pubTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// resumePublisher publishes the test's items through the control APIs.
type resumePublisher struct {
	ctx      context.Context
	controls []string
	http     *http.Client
	repeated atomic.Int64
}

// publish sends items first..last (item n has id "i<n>" and is an SSE
// event with that id and data n) in one request through instance inst.
// A 503 (JetStream did not confirm in time, on a loaded machine) is
// retried as a publisher would: the ids make the retry exactly-once.
func (p *resumePublisher) publish(first, last, inst int) error {
	var err error
	for try := 0; try < 5; try++ {
		var retry bool
		if retry, err = p.publishOnce(first, last, inst); !retry {
			return err
		}
		p.repeated.Add(int64(last - first + 1))
		time.Sleep(250 * time.Millisecond) // a publisher's back-off, not a synchronisation
	}
	return err
}

// publishOnce is one attempt of publish; retry says a 503 asked for another.
func (p *resumePublisher) publishOnce(first, last, inst int) (retry bool, err error) {
	var items []fleetItem
	for n := first; n <= last; n++ {
		it := fleetItem{Channel: resumeChannel, ID: fmt.Sprintf("i%d", n)}
		it.Formats.HTTPStream.Content = fmt.Sprintf("id: i%d\ndata: %d\n\n", n, n)
		items = append(items, it)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.controls[inst]+"/publish/", bytes.NewReader(publishBody(items...)))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("publishing items %d..%d through gripd %d: %w", first, last, inst, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode == http.StatusServiceUnavailable,
			fmt.Errorf("publishing items %d..%d through gripd %d: %d %q", first, last, inst, resp.StatusCode, b)
	}
	return false, nil
}

// resumeClient is an SSE client that keeps dropping its connection and
// coming back, as EventSource does, with the id of the last event it got.
type resumeClient struct {
	id      int
	query   bool // sends lastEventId in the query instead of the header
	proxies []string
	http    *http.Client
	rnd     *rand.Rand

	last  string // the id of the last event received
	got   []int  // the data of every event received, in order
	other []string
	conns int64
	errs  []string
	done  atomic.Bool
}

// run connects, reads for a random while, drops, and connects again,
// until the last item has arrived or ctx ends.
func (c *resumeClient) run(ctx context.Context) {
	for ctx.Err() == nil && !c.done.Load() {
		c.conns++
		life := resumeMinLife + time.Duration(c.rnd.Int64N(int64(resumeMaxLife-resumeMinLife)))
		if err := c.connect(ctx, c.proxies[c.rnd.IntN(len(c.proxies))], life); err != nil && len(c.errs) < 5 {
			c.errs = append(c.errs, err.Error())
		}
	}
}

func (c *resumeClient) connect(parent context.Context, proxy string, life time.Duration) error {
	ctx, cancel := context.WithTimeout(parent, life)
	defer cancel()
	u := proxy + "/stream/" + resumeChannel
	if c.query {
		u += "?lastEventId=" + url.QueryEscape(c.last)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if !c.query {
		req.Header.Set("Last-Event-ID", c.last)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil // dropped before the answer: fine
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	var id, data string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil // dropped (or ended): a partial event does not count
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if id != "" {
				c.event(id, data)
				if c.done.Load() {
					return nil
				}
			}
			id, data = "", ""
		case strings.HasPrefix(line, ":"): // a comment (the hold's ":held")
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		default:
			c.other = append(c.other, line)
		}
	}
}

// event is one dispatched SSE event.
func (c *resumeClient) event(id, data string) {
	n, err := strconv.Atoi(data)
	if err != nil || id != "i"+data {
		c.other = append(c.other, "id "+id+" data "+data)
		return
	}
	c.last = id
	c.got = append(c.got, n)
	if n == resumeItems {
		c.done.Store(true)
	}
}

// check says what is wrong with what the client got, if anything.
func (c *resumeClient) check() error {
	if len(c.other) > 0 {
		return fmt.Errorf("unexpected lines %q", c.other[:min(len(c.other), 5)])
	}
	for i, n := range c.got {
		if n != i+1 {
			return fmt.Errorf("event %d is item %d (items %v around it)", i+1, n, c.got[max(0, i-3):min(len(c.got), i+3)])
		}
	}
	if len(c.got) != resumeItems {
		return fmt.Errorf("got %d items, want %d", len(c.got), resumeItems)
	}
	return nil
}

func (c *resumeClient) String() string {
	return fmt.Sprintf("client %d (query=%v): %d items, last %q, %d connections, errors %q",
		c.id, c.query, len(c.got), c.last, c.conns, c.errs)
}
