// fleet_harness_test.go holds the fleet test's harness: the nats-server and gripd processes, the SSE clients, the publishers and the waits.

package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gripd/gripd/internal/testutil"
)

// ---------------------------------------------------------------------------
// Processes that the test stops or kills on purpose

// fleetProc is a process the test may stop itself (nats-server restarts,
// a killed gripd); its cleanup only complains about an exit nobody asked for.
type fleetProc struct {
	name     string
	cmdline  string
	cmd      *exec.Cmd
	out      *testutil.Buffer
	done     chan struct{}
	waitErr  error
	intended atomic.Bool // the test ended it
}

func startFleetProc(t *testing.T, name, bin string, args ...string) *fleetProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	p := &fleetProc{name: name, cmdline: bin + " " + strings.Join(args, " "), cmd: cmd, out: out, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s (%s): %v", name, p.cmdline, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.exited() && !p.intended.Load() {
			t.Errorf("%s exited before the test ended: %v", name, p.waitErr)
		}
		p.stop(syscall.SIGTERM, 5*time.Second)
		if t.Failed() {
			t.Logf("---- %s: %s\n%s---- end of %s output", name, p.cmdline, tail(out.String(), 48<<10), name)
		}
	})
	return p
}

func (p *fleetProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits for the exit, with SIGKILL after grace. It
// reports whether the process had to be killed.
func (p *fleetProc) stop(sig syscall.Signal, grace time.Duration) bool {
	p.intended.Store(true)
	if p.exited() {
		return false
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return false
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return true
	}
}

// tail returns the last n bytes of s, from a line start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "[... earlier output cut ...]\n" + s
}

// buildNATSServer builds the nats-server pinned by go.mod's tool directive.
func buildNATSServer(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("cannot build nats-server: %v", err)
	}
	out := filepath.Join(t.TempDir(), "nats-server")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, goTool, "build", "-o", out, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		t.Fatalf("go build -o %s github.com/nats-io/nats-server/v2 (the tool in go.mod): %v\n%s", out, err, b)
	}
	return out
}

// The fleet's NATS asks for credentials, as docs/security.md says a fleet
// should: the gripd instances log in as fleetNATSUser (everything gripd
// needs), the test's publisher as fleetPublisher (publish bodies and
// items, read the answers, nothing else).
const (
	fleetNATSUser      = "gripd"
	fleetNATSPassword  = "fleet-instance-secret"
	fleetPublisher     = "publisher"
	fleetPublisherPass = "fleet-publisher-secret"
)

// fleetNATSConfig is nats-server's configuration for the fleet test.
func fleetNATSConfig(port int) string {
	return fmt.Sprintf(`listen: "127.0.0.1:%d"
authorization {
  users: [
    {user: %q, password: %q}
    {user: %q, password: %q, permissions: {
      publish: {allow: ["gripd.publish", "gripd.ch.>"]}
      subscribe: {allow: ["_INBOX.>"]}
    }}
  ]
}
`, port, fleetNATSUser, fleetNATSPassword, fleetPublisher, fleetPublisherPass)
}

// startNATS starts nats-server on port, with fleetNATSConfig, and waits
// until it accepts TCP.
func startNATS(t *testing.T, ctx context.Context, bin string, port, run int) *fleetProc {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "nats-server.conf")
	if err := os.WriteFile(conf, []byte(fleetNATSConfig(port)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startFleetProc(t, fmt.Sprintf("nats-server (run %d)", run), bin, "-c", conf)
	waitUntil(t, ctx, 15*time.Second, "nats-server to accept connections on port "+strconv.Itoa(port), func() (bool, string) {
		if p.exited() {
			t.Fatalf("nats-server exited during start-up: %v\n%s", p.waitErr, p.out.String())
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
	return p
}

// ---------------------------------------------------------------------------
// The backend: one plain Go GRIP backend for the whole fleet

func startFleetBackend(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stream/{ch}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Grip-Hold", "stream")
		h.Add("Grip-Channel", r.PathValue("ch"))
		if also := r.URL.Query().Get("also"); also != "" {
			h.Add("Grip-Channel", also)
		}
		h.Set("Content-Type", "text/event-stream")
		io.WriteString(w, fleetHeld)
	})
	mux.HandleFunc("GET /plain", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	return testutil.Backend(t, mux.ServeHTTP).Listener.Addr().String()
}

// ---------------------------------------------------------------------------
// SSE clients

type fleetClient struct {
	id   int
	inst int  // which gripd it is on
	odd  bool // holds fleetOddChannel too

	mu       sync.Mutex
	items    map[string]int      // "publisher-seq" -> times received
	last     map[string]int      // publisher -> last seq received
	disorder []string            // items received after a later one of their publisher
	probes   map[string]struct{} // "round/channel-kind" seen
	other    []string            // lines that are none of the above
	held     bool                // the hold's initial body arrived
	recv     atomic.Int64        // item lines received (not probes)
	ended    error               // the stream ended (nil while open)
	endedAt  time.Time
}

// read parses the SSE stream: each "data: X" line is an item or a probe.
func (c *fleetClient) read(body io.ReadCloser) {
	defer body.Close()
	br := bufio.NewReader(body)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			c.line(strings.TrimSuffix(line, "\n"), err != nil)
		}
		if err != nil {
			c.mu.Lock()
			c.ended, c.endedAt = err, time.Now()
			c.mu.Unlock()
			return
		}
	}
}

func (c *fleetClient) line(l string, partial bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case l == "":
	case l == ":held" && !partial:
		c.held = true
	case strings.HasPrefix(l, "data: probe/") && !partial:
		c.probes[strings.TrimPrefix(l, "data: probe/")] = struct{}{}
	case strings.HasPrefix(l, "data: ") && !partial:
		tag := strings.TrimPrefix(l, "data: ")
		c.items[tag]++
		c.recv.Add(1)
		i := strings.LastIndexByte(tag, '-')
		seq, err := strconv.Atoi(tag[i+1:])
		if i < 0 || err != nil {
			c.other = append(c.other, l)
			return
		}
		pub := tag[:i]
		if seq <= c.last[pub] {
			c.disorder = append(c.disorder, fmt.Sprintf("%s after %s-%d", tag, pub, c.last[pub]))
		} else {
			c.last[pub] = seq
		}
	default:
		c.other = append(c.other, l)
	}
}

func (c *fleetClient) endedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

func (c *fleetClient) hasProbe(round string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.probes[round+"/fleet"]; !ok {
		return false
	}
	if _, ok := c.probes[round+"/odd"]; c.odd && !ok {
		return false
	}
	return true
}

// missing returns the tags of want this client has not received.
func (c *fleetClient) missing(want []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var m []string
	for _, tag := range want {
		if c.items[tag] == 0 {
			m = append(m, tag)
		}
	}
	return m
}

func (c *fleetClient) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("client %d (gripd %d, odd=%v): %d distinct items, ended=%v", c.id, c.inst, c.odd, len(c.items), c.ended)
}

// ---------------------------------------------------------------------------
// The fleet: publishers, and waits on what the clients got

type fleet struct {
	t       *testing.T
	ctx     context.Context
	control []string // control API base URLs, by instance
	pubHTTP *http.Client
	nc      *nats.Conn
	clients []*fleetClient
	gripds  []*fleetProc
	live    []*fleetClient // the clients the publishers' window waits for

	mu       sync.Mutex
	fleetIn  []string // tags published (and acknowledged) on fleetChannel
	oddIn    []string // tags published (and acknowledged) on fleetOddChannel
	refused  []string // tags whose publish was refused: must reach nobody
	nextID   atomic.Int64
	ackFleet atomic.Int64 // len(fleetIn), for the window
	ackOdd   atomic.Int64 // len(oddIn)
	probeSeq atomic.Int64
}

type fleetItem struct {
	Channel string `json:"channel"`
	ID      string `json:"id,omitempty"`
	Formats struct {
		HTTPStream struct {
			Content string `json:"content"`
		} `json:"http-stream"`
	} `json:"formats"`
}

func publishBody(items ...fleetItem) []byte {
	b, err := json.Marshal(struct {
		Items []fleetItem `json:"items"`
	}{items})
	if err != nil {
		panic(err)
	}
	return b
}

func (f *fleet) item(channel, tag string, withID bool) fleetItem {
	it := fleetItem{Channel: channel}
	if withID {
		it.ID = fmt.Sprintf("p%d", f.nextID.Add(1))
	}
	it.Formats.HTTPStream.Content = "data: " + tag + "\n\n"
	return it
}

// post publishes body through instance inst's control API.
func (f *fleet) post(inst int, body []byte) (int, string, error) {
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.control[inst]+"/publish/", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.pubHTTP.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// viaNATS sends body to the publish subject and waits for gripd's answer.
func (f *fleet) viaNATS(body []byte) error {
	msg, err := f.nc.Request("gripd.publish", body, 5*time.Second)
	if err != nil {
		return fmt.Errorf("request on gripd.publish: %w", err)
	}
	if r := string(msg.Data); !strings.HasPrefix(r, "Published") {
		return fmt.Errorf("gripd answered %q on gripd.publish", r)
	}
	return nil
}

// publisher publishes n items named name-1..name-n, one request at a time,
// each through the control API of instances[i%len] (or NATS when
// instances is nil), and records the acknowledged ones.
func (f *fleet) publisher(name, channel string, n int, instances []int) error {
	for seq := 1; seq <= n; seq++ {
		if err := f.waitWindow(); err != nil {
			return fmt.Errorf("publisher %s, before item %d: %w", name, seq, err)
		}
		tag := fmt.Sprintf("%s-%d", name, seq)
		body := publishBody(f.item(channel, tag, true))
		if instances == nil {
			if err := f.viaNATS(body); err != nil {
				return fmt.Errorf("publisher %s, item %s: %w", name, tag, err)
			}
		} else {
			inst := instances[seq%len(instances)]
			status, resp, err := f.post(inst, body)
			if err != nil || status != http.StatusOK {
				return fmt.Errorf("publisher %s, item %s through gripd %d: status %d %q, err %v", name, tag, inst, status, resp, err)
			}
		}
		f.mu.Lock()
		if channel == fleetChannel {
			f.fleetIn = append(f.fleetIn, tag)
			f.ackFleet.Add(1)
		} else {
			f.oddIn = append(f.oddIn, tag)
			f.ackOdd.Add(1)
		}
		f.mu.Unlock()
	}
	return nil
}

// waitWindow waits until no live client is more than fleetWindow items
// behind what has been acknowledged.
func (f *fleet) waitWindow() error {
	start := time.Now()
	for {
		fleetN, oddN := f.ackFleet.Load(), f.ackOdd.Load()
		var worst *fleetClient
		var worstLag int64
		for _, c := range f.live {
			lag := fleetN - c.recv.Load()
			if c.odd {
				lag += oddN
			}
			if lag > worstLag {
				worst, worstLag = c, lag
			}
		}
		if worstLag <= fleetWindow {
			return nil
		}
		if time.Since(start) > fleetWait || f.ctx.Err() != nil {
			return fmt.Errorf("for %v %s stayed %d items behind what was published%s", fleetWait, worst, worstLag, f.slowDrops())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// slowDrops reports the subscribers each gripd dropped as too slow, from
// its log.
func (f *fleet) slowDrops() string {
	var s []string
	for i, g := range f.gripds {
		if n := strings.Count(g.out.String(), "too slow"); n > 0 {
			s = append(s, fmt.Sprintf("gripd %d dropped %d clients as too slow", i, n))
		}
	}
	if len(s) == 0 {
		return ""
	}
	return " (" + strings.Join(s, "; ") + ")"
}

// runPublishers runs the publishers concurrently and fails on any error.
func (f *fleet) runPublishers(pubs map[string]func() error) {
	f.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(pubs))
	for _, p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		f.t.Error(err)
	}
	if f.t.Failed() {
		f.t.FailNow()
	}
}

// alive returns the clients not on the given (killed) instances.
func (f *fleet) alive(dead map[int]bool) []*fleetClient {
	var cs []*fleetClient
	for _, c := range f.clients {
		if !dead[c.inst] {
			cs = append(cs, c)
		}
	}
	return cs
}

// waitClients polls until cond holds for every client in cs, or fails
// after timeout describing a few that lag.
func (f *fleet) waitClients(cs []*fleetClient, timeout time.Duration, what string, cond func(c *fleetClient) (bool, string)) {
	f.t.Helper()
	start := time.Now()
	for {
		var lag []string
		nlag := 0
		for _, c := range cs {
			if ok, why := cond(c); !ok {
				nlag++
				if len(lag) < 5 {
					lag = append(lag, c.String()+": "+why)
				}
			}
		}
		if nlag == 0 {
			f.t.Logf("%s: all %d clients after %v", what, len(cs), time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > timeout || f.ctx.Err() != nil {
			f.t.Fatalf("timed out after %v waiting for %s: %d of %d clients lag, e.g.\n  %s", timeout, what, nlag, len(cs), strings.Join(lag, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitDelivered waits until every client in cs has every acknowledged item
// of its channels, and none has ended.
func (f *fleet) waitDelivered(cs []*fleetClient, what string) {
	f.t.Helper()
	f.mu.Lock()
	fleetIn, oddIn := append([]string(nil), f.fleetIn...), append([]string(nil), f.oddIn...)
	f.mu.Unlock()
	f.waitClients(cs, fleetWait, what, func(c *fleetClient) (bool, string) {
		want := fleetIn
		if c.odd {
			want = append(append([]string(nil), fleetIn...), oddIn...)
		}
		if err := c.endedErr(); err != nil {
			f.t.Fatalf("%s: its stream ended (%v) while waiting for %s%s", c, err, what, f.slowDrops())
		}
		if m := c.missing(want); len(m) > 0 {
			return false, fmt.Sprintf("missing %d of %d, e.g. %q", len(m), len(want), m[:min(len(m), 5)])
		}
		return true, ""
	})
}

// checkExact fails for any client in cs that has an item twice, one it
// should not have (another channel's, or a refused publish's), items of a
// publisher out of order, or lines that are not SSE events of the test.
func (f *fleet) checkExact(cs []*fleetClient) {
	f.t.Helper()
	f.mu.Lock()
	fleetSet := map[string]bool{}
	for _, tag := range f.fleetIn {
		fleetSet[tag] = true
	}
	oddSet := map[string]bool{}
	for _, tag := range f.oddIn {
		oddSet[tag] = true
	}
	refused := map[string]bool{}
	for _, tag := range f.refused {
		refused[tag] = true
	}
	f.mu.Unlock()
	bad := 0
	for _, c := range cs {
		c.mu.Lock()
		var probs []string
		for tag, n := range c.items {
			switch {
			case refused[tag]:
				probs = append(probs, fmt.Sprintf("%s arrived although its publish was answered 503", tag))
			case !fleetSet[tag] && !(c.odd && oddSet[tag]):
				probs = append(probs, fmt.Sprintf("%s arrived but is not for this client (odd=%v)", tag, c.odd))
			case n != 1:
				probs = append(probs, fmt.Sprintf("%s arrived %d times", tag, n))
			}
		}
		if len(c.disorder) > 0 {
			probs = append(probs, fmt.Sprintf("out of publish order: %q", c.disorder[:min(len(c.disorder), 5)]))
		}
		if len(c.other) > 0 {
			probs = append(probs, fmt.Sprintf("unexpected lines: %q", c.other[:min(len(c.other), 5)]))
		}
		if !c.held {
			probs = append(probs, "never got the hold's initial body "+strconv.Quote(fleetHeld))
		}
		c.mu.Unlock()
		if len(probs) > 0 {
			bad++
			if bad <= 5 {
				sort.Strings(probs)
				f.t.Errorf("%s:\n  %s", c, strings.Join(probs[:min(len(probs), 8)], "\n  "))
			}
		}
	}
	if bad > 0 {
		f.t.Fatalf("%d of %d clients got something wrong (first 5 shown)", bad, len(cs))
	}
}

// probe publishes probes (one on each channel) through each live control
// API until, for every one of them, a probe published there has reached
// every client in cs: only then does each instance's publish reach each
// instance's clients. Refused probes (NATS not back yet) are retried.
func (f *fleet) probe(cs []*fleetClient, live []int, timeout time.Duration, what string) {
	f.t.Helper()
	round := fmt.Sprintf("r%d", f.probeSeq.Add(1))
	start := time.Now()
	done := map[int]bool{}
	publishes, refused := 0, 0
	var lastErr string
	for {
		for _, inst := range live {
			if done[inst] {
				continue
			}
			via := fmt.Sprintf("%s.g%d", round, inst)
			body := publishBody(f.item(fleetChannel, "probe/"+via+"/fleet", false), f.item(fleetOddChannel, "probe/"+via+"/odd", false))
			publishes++
			if status, resp, err := f.post(inst, body); err != nil || status != http.StatusOK {
				refused++
				lastErr = fmt.Sprintf("probe through gripd %d: status %d %q, err %v", inst, status, resp, err)
			}
		}
		deadline := time.Now().Add(100 * time.Millisecond)
		for {
			var lag []string
			for _, inst := range live {
				if done[inst] {
					continue
				}
				via := fmt.Sprintf("%s.g%d", round, inst)
				ready := 0
				for _, c := range cs {
					if err := c.endedErr(); err != nil {
						f.t.Fatalf("%s: its stream ended (%v) while waiting for %s%s", c, err, what, f.slowDrops())
					}
					if c.hasProbe(via) {
						ready++
					}
				}
				if ready == len(cs) {
					done[inst] = true
				} else {
					lag = append(lag, fmt.Sprintf("probes through gripd %d reached %d of %d clients", inst, ready, len(cs)))
				}
			}
			if len(lag) == 0 {
				f.t.Logf("%s: probes through each of gripd %v reached all %d clients after %v (%d probe publishes, %d refused)",
					what, live, len(cs), time.Since(start).Round(time.Millisecond), publishes, refused)
				return
			}
			if time.Since(start) > timeout || f.ctx.Err() != nil {
				f.t.Fatalf("timed out after %v waiting for %s: %s (%d probe publishes, %d refused; last refusal: %s)",
					timeout, what, strings.Join(lag, "; "), publishes, refused, lastErr)
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
