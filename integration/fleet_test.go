package integration

// A fleet: three gripd instances sharing a real nats-server (built from the
// module's tool dependency), 300 SSE clients spread over them, and
// publishers on every control API and straight on NATS. Every client gets
// every item exactly once and each publisher's items in its order; a NATS
// outage makes publishes fail with 503 (never a 200 for an item that is
// lost) and heals by itself without dropping a client; a killed instance
// takes only its own clients with it.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gripd/gripd/internal/testutil"
)

const (
	fleetInstances   = 3
	fleetPerInstance = 100  // SSE clients on each instance
	fleetItems       = 1000 // phase c, on fleetChannel
	fleetOddItems    = 60   // phase c, on fleetOddChannel
	fleetAfterHeal   = 100  // phase d, after NATS is back
	fleetAfterKill   = 60   // phase e, after one gripd is killed
	fleetHeld        = ":held\n\n"

	fleetChannel = "fleet"
	// Half the clients also hold this one. Its name has characters NATS
	// gives meaning to and starts with the '~' of gripd's encoded subject
	// tokens, so it only works if the encoding round-trips across instances.
	fleetOddChannel = "~fleet.odd*>"

	// At most this many items may be on their way to a client (published
	// but not yet received) when a publisher sends the next one. gripd
	// queues up to 100 items per subscriber and drops a subscriber whose
	// queue overflows (Pushpin's policy); on a loaded 2-core machine that
	// runs the three instances, NATS and the 300 clients, unpaced
	// publishers can stall an instance long enough for that. The window
	// keeps this a test of delivery, not of capacity.
	fleetWindow = 50

	fleetTimeout = 100 * time.Second // the whole test, once the binaries are built
	fleetWait    = 30 * time.Second  // one wait for deliveries
)

// ---------------------------------------------------------------------------
// The test

func TestFleet(t *testing.T) {
	gripd := wsChatGripd(t)
	natsBin := buildNATSServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), fleetTimeout)
	t.Cleanup(cancel)
	testStart := time.Now()
	phase := func(name string, start time.Time) {
		t.Logf("phase %s took %v", name, time.Since(start).Round(time.Millisecond))
	}

	natsPort := testutil.FreePort(t)
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natsPort)
	natsRun := 1
	ns := startNATS(t, ctx, natsBin, natsPort, natsRun)
	backend := startFleetBackend(t)

	lvl := os.Getenv("GRIPD_LOG_LEVEL")
	if lvl == "" {
		lvl = "debug"
	}
	f := &fleet{
		t:       t,
		ctx:     ctx,
		pubHTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
	}
	t.Cleanup(f.pubHTTP.CloseIdleConnections)
	var proxies []string
	h := &harness{t: t, ctx: ctx, client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	// The instances log in with nats.user and nats.password (from a file)
	// in their configuration file; everything else comes from flags.
	natsPass := filepath.Join(t.TempDir(), "nats.pass")
	if err := os.WriteFile(natsPass, []byte(fleetNATSPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gripdConf := filepath.Join(t.TempDir(), "gripd.yaml")
	if err := os.WriteFile(gripdConf, []byte(fmt.Sprintf("nats:\n  user: %s\n  password: \"file:%s\"\n", fleetNATSUser, natsPass)), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range fleetInstances {
		listenPort, controlPort := testutil.FreePort(t), testutil.FreePort(t)
		proxies = append(proxies, fmt.Sprintf("http://127.0.0.1:%d", listenPort))
		f.control = append(f.control, fmt.Sprintf("http://127.0.0.1:%d", controlPort))
		f.gripds = append(f.gripds, startFleetProc(t, fmt.Sprintf("gripd %d", i), gripd,
			"--listen", fmt.Sprintf("127.0.0.1:%d", listenPort),
			"--control-listen", fmt.Sprintf("127.0.0.1:%d", controlPort),
			"--admin-listen", "off",
			"--config", gripdConf,
			"--route", "* "+backend,
			"--nats", natsURL,
			"--log-level", lvl))
	}
	for i, g := range f.gripds {
		waitUntil(t, ctx, readyTimeout, fmt.Sprintf("gripd %d to proxy GET /plain and its control API to answer GET /", i), func() (bool, string) {
			if g.exited() {
				t.Fatalf("gripd %d exited during start-up (%s): %v\n%s", i, g.cmdline, g.waitErr, g.out.String())
			}
			cs, _, _, cerr := h.get(f.control[i] + "/")
			ps, _, pb, perr := h.get(proxies[i] + "/plain")
			state := fmt.Sprintf("control GET /: status %d err %v; client GET /plain: status %d body %q err %v", cs, cerr, ps, pb, perr)
			return cerr == nil && cs == http.StatusOK && perr == nil && ps == http.StatusOK && pb == "ok\n", state
		})
	}

	// Without credentials NATS lets nobody in.
	if anon, err := nats.Connect(natsURL); err == nil {
		anon.Close()
		t.Fatalf("a client without credentials connected to the fleet's NATS")
	}
	nc, err := nats.Connect(natsURL, nats.Name("gripd fleet test"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.UserInfo(fleetPublisher, fleetPublisherPass))
	if err != nil {
		t.Fatalf("connecting the test's publisher to %s: %v", natsURL, err)
	}
	t.Cleanup(nc.Close)
	f.nc = nc

	// a. 300 SSE clients, 100 on each instance; the odd ones hold the
	// second channel too.
	start := time.Now()
	streams := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
	t.Cleanup(streams.CloseIdleConnections)
	clientCtx, clientCancel := context.WithCancel(ctx)
	t.Cleanup(clientCancel)
	f.clients = make([]*fleetClient, fleetInstances*fleetPerInstance)
	var openWG sync.WaitGroup
	openErrs := make(chan error, len(f.clients))
	sem := make(chan struct{}, 16)
	for i := range f.clients {
		c := &fleetClient{id: i, inst: i % fleetInstances, odd: i%2 == 1,
			items: map[string]int{}, last: map[string]int{}, probes: map[string]struct{}{}}
		f.clients[i] = c
		openWG.Add(1)
		go func() {
			defer openWG.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			u := proxies[c.inst] + "/stream/" + fleetChannel
			if c.odd {
				u += "?also=" + url.QueryEscape(fleetOddChannel)
			}
			req, err := http.NewRequestWithContext(clientCtx, http.MethodGet, u, nil)
			if err != nil {
				openErrs <- err
				return
			}
			resp, err := streams.Do(req)
			if err != nil {
				openErrs <- fmt.Errorf("client %d: GET %s: %w", c.id, u, err)
				return
			}
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Grip-Hold") != "" {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				openErrs <- fmt.Errorf("client %d: GET %s: status %d, Content-Type %q, Grip-Hold %q, body %q; want 200, the backend's text/event-stream and no Grip-* headers",
					c.id, u, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Grip-Hold"), b)
				return
			}
			go c.read(resp.Body)
		}()
	}
	openWG.Wait()
	close(openErrs)
	for err := range openErrs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	f.waitClients(f.clients, 10*time.Second, "the hold's initial body", func(c *fleetClient) (bool, string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.held, "no " + strconv.Quote(fleetHeld) + " yet"
	})
	f.live = f.clients
	phase("a (300 streams open)", start)

	// b. Readiness: nothing on the wire says when a subscription is in
	// place on every instance, so probe until each client has one.
	start = time.Now()
	all := []int{0, 1, 2}
	f.probe(f.clients, all, 20*time.Second, "readiness")
	phase("b (readiness)", start)

	// c. 1,000 items on fleetChannel from four concurrent publishers (one
	// per control API, one on NATS's publish subject) and 60 on the odd
	// channel round-robin over the control APIs.
	start = time.Now()
	per := fleetItems / 4
	f.runPublishers(map[string]func() error{
		"c0":   func() error { return f.publisher("c0", fleetChannel, per, []int{0}) },
		"c1":   func() error { return f.publisher("c1", fleetChannel, per, []int{1}) },
		"c2":   func() error { return f.publisher("c2", fleetChannel, per, []int{2}) },
		"nats": func() error { return f.publisher("nats", fleetChannel, fleetItems-3*per, nil) },
		"odd":  func() error { return f.publisher("odd", fleetOddChannel, fleetOddItems, all) },
	})
	t.Logf("published %d + %d items in %v", fleetItems, fleetOddItems, time.Since(start).Round(time.Millisecond))
	f.waitDelivered(f.clients, "the 1,000 items")
	f.checkExact(f.clients)
	phase("c (1,000 items, exactly once, in order)", start)

	// d. NATS goes away: publishes are refused with 503 (an item NATS did
	// not take must not be acknowledged); NATS comes back on the same port
	// and the fleet heals without dropping a client.
	start = time.Now()
	if killed := ns.stop(syscall.SIGTERM, 10*time.Second); killed {
		t.Logf("nats-server did not exit within 10 s of SIGTERM; killed it")
	}
	t.Logf("nats-server stopped (%v)", ns.waitErr)
	outStart := time.Now()
	var refusals []string
	for i := 0; time.Since(outStart) < time.Second; i++ {
		tag := fmt.Sprintf("outage-%d", i+1)
		inst := i % fleetInstances
		status, resp, err := f.post(inst, publishBody(f.item(fleetChannel, tag, true)))
		f.mu.Lock()
		f.refused = append(f.refused, tag)
		f.mu.Unlock()
		switch {
		case err != nil:
			t.Errorf("publish %s through gripd %d while NATS is down: %v (want a 503 answer)", tag, inst, err)
		case status != http.StatusServiceUnavailable:
			t.Errorf("publish %s through gripd %d while NATS is down: status %d %q, want 503", tag, inst, status, resp)
		case resp == "":
			t.Errorf("publish %s through gripd %d while NATS is down: 503 without a reason", tag, inst)
		}
		refusals = append(refusals, fmt.Sprintf("gripd %d: %d %q", inst, status, resp))
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d publishes while NATS was down, e.g. %s", len(refusals), refusals[0])
	if t.Failed() {
		t.FailNow()
	}
	natsRun++
	ns = startNATS(t, ctx, natsBin, natsPort, natsRun)
	restarted := time.Now()
	f.probe(f.clients, all, 30*time.Second, "recovery after the NATS restart")
	t.Logf("recovered %v after nats-server was back", time.Since(restarted).Round(time.Millisecond))
	waitUntil(t, ctx, 10*time.Second, "the test's own NATS connection to reconnect", func() (bool, string) {
		return nc.IsConnected(), nc.Status().String()
	})
	per = fleetAfterHeal / 4
	f.runPublishers(map[string]func() error{
		"d0":    func() error { return f.publisher("d0", fleetChannel, per, []int{0}) },
		"d1":    func() error { return f.publisher("d1", fleetChannel, per, []int{1}) },
		"d2":    func() error { return f.publisher("d2", fleetChannel, per, []int{2}) },
		"dnats": func() error { return f.publisher("dnats", fleetChannel, fleetAfterHeal-3*per, nil) },
	})
	f.waitDelivered(f.clients, "the 100 items after the NATS restart")
	f.checkExact(f.clients)
	phase("d (NATS outage and restart)", start)

	// e. One instance dies: its clients' streams end, the others go on.
	start = time.Now()
	const victim = 2
	f.gripds[victim].stop(syscall.SIGKILL, 5*time.Second)
	dead := map[int]bool{victim: true}
	var victims []*fleetClient
	for _, c := range f.clients {
		if c.inst == victim {
			victims = append(victims, c)
		}
	}
	f.waitClients(victims, 10*time.Second, "the streams of the killed gripd to end", func(c *fleetClient) (bool, string) {
		return c.endedErr() != nil, "still open"
	})
	survivors := f.alive(dead)
	f.live = survivors
	live := []int{0, 1}
	per = fleetAfterKill / 3
	f.runPublishers(map[string]func() error{
		"e0":    func() error { return f.publisher("e0", fleetChannel, per, []int{0}) },
		"e1":    func() error { return f.publisher("e1", fleetChannel, per, []int{1}) },
		"enats": func() error { return f.publisher("enats", fleetChannel, fleetAfterKill-2*per, nil) },
		"eodd":  func() error { return f.publisher("eodd", fleetOddChannel, 10, live) },
	})
	f.waitDelivered(survivors, "the items after one gripd was killed")
	f.checkExact(survivors)
	phase("e (one gripd killed)", start)

	for i, g := range f.gripds {
		if i != victim && g.exited() {
			t.Errorf("gripd %d exited: %v", i, g.waitErr)
		}
	}
	t.Logf("TestFleet: %d clients, %d items acknowledged on %q and %d on %q, %v after the binaries were built",
		len(f.clients), len(f.fleetIn), fleetChannel, len(f.oddIn), fleetOddChannel, time.Since(testStart).Round(time.Millisecond))
}
