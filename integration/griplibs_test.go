package integration

// Tests that put gripd between the GRIP client libraries an application would
// use: a backend written with @fanoutio/serve-grip 2.0 (js/backend.js) and a
// publisher using @fanoutio/grip 4.3's Publisher (js/publish.js).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gripd/gripd/internal/testutil"
)

const (
	sigIss = "gripd-integration"
	sigKey = "integration-sig-key"

	// An SSE comment published to a stream until the client has one: nothing
	// on the wire says when gripd's subscription became active, so this is the
	// readiness signal. Stripped before comparing what arrived.
	probe = ":gripd-probe\n\n"

	streamInitial = ":stream open\n\n"              // js/backend.js, /stream
	pollTimeout   = "{\"messages\":[]}\n"           // js/backend.js, /poll on timeout
	plainBody     = "plain response from backend\n" // js/backend.js, /plain

	pollEvery     = 100 * time.Millisecond
	primeTimeout  = 10 * time.Second
	readyTimeout  = 20 * time.Second
	testTimeout   = 60 * time.Second
	publishBudget = 15 * time.Second // one run of js/publish.js
)

var (
	gripdBin string // built once by TestMain
	buildErr error
	chanSeq  atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if bin := os.Getenv("GRIPD_BIN"); bin != "" {
		// Test a prebuilt binary instead of building ../cmd/gripd.
		gripdBin, buildErr = filepath.Abs(bin)
	} else if os.Getenv("GRIPD_SKIP_NODE") != "1" {
		dir, err := os.MkdirTemp("", "gripd-integration-")
		if err != nil {
			buildErr = err
		} else {
			defer os.RemoveAll(dir)
			gripdBin = filepath.Join(dir, "gripd")
			buildErr = buildGripd(gripdBin)
		}
	}
	return m.Run()
}

func buildGripd(out string) error {
	goTool, err := exec.LookPath("go") // `go test` puts $GOROOT/bin first on PATH
	if err != nil {
		return fmt.Errorf("cannot build gripd: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", out, "../cmd/gripd")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -o %s ../cmd/gripd: %v\n%s", out, err, b)
	}
	return nil
}

// requireNode fails the test (never skips silently) when Node or the pinned
// npm packages are missing, unless GRIPD_SKIP_NODE=1.
func requireNode(t *testing.T) {
	t.Helper()
	if os.Getenv("GRIPD_SKIP_NODE") == "1" {
		t.Skip("GRIPD_SKIP_NODE=1: skipping the tests that need Node and integration/node_modules")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not on PATH (%v). These tests need Node >= 20 and the packages pinned in integration/package-lock.json: "+
			"`make test-deps` installs them (or install Node and npm, then run `npm ci` in integration/), or set GRIPD_SKIP_NODE=1 to skip them", err)
	}
	for _, p := range []string{"@fanoutio/grip", "@fanoutio/serve-grip"} {
		if _, err := os.Stat(filepath.Join("node_modules", filepath.FromSlash(p), "package.json")); err != nil {
			t.Fatalf("integration/node_modules/%s is missing: `make test-deps` (or `npm ci` in integration/) installs it "+
				"(or set GRIPD_SKIP_NODE=1 to skip these tests)", p)
		}
	}
	if buildErr != nil {
		t.Fatalf("building gripd failed: %v", buildErr)
	}
}

// ---------------------------------------------------------------------------
// Processes

type proc struct {
	name    string
	cmd     *exec.Cmd
	out     *testutil.Buffer
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startProc starts a process that lives until the end of the test: t.Cleanup
// sends it SIGTERM (SIGKILL after 3 s), waits for it, reports it if it had
// died on its own, and shows its output if the test failed.
func startProc(t *testing.T, name string, env []string, bin string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 3 * time.Second
	cmd.Env = append(os.Environ(), env...)
	out := &testutil.Buffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s (%s %s): %v", name, bin, strings.Join(args, " "), err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		diedEarly := p.exited()
		cancel()
		<-p.done
		if diedEarly {
			t.Errorf("%s exited before the test ended: %v", name, p.waitErr)
		}
		if t.Failed() {
			t.Logf("---- %s: %s %s\n%s---- end of %s output", name, bin, strings.Join(args, " "), out.String(), name)
		}
	})
	return p
}

// ---------------------------------------------------------------------------
// The setup: a serve-grip backend behind gripd

type controlAuth struct{ iss, key string }

type harness struct {
	t          *testing.T
	ctx        context.Context
	proxyURL   string // gripd's client listener
	controlURL string // gripd's control API
	client     *http.Client
	backend    *proc
	gripd      *proc
}

// setup starts js/backend.js and gripd in front of it, and waits until gripd
// proxies /plain to the backend and its control API answers GET /. With auth
// set, gripd is configured from a YAML file that requires control-API JWTs.
func setup(t *testing.T, auth *controlAuth) (*harness, context.Context) {
	t.Helper()
	requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)

	backendPort, listenPort, controlPort := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
	h := &harness{
		t:          t,
		ctx:        ctx,
		proxyURL:   fmt.Sprintf("http://127.0.0.1:%d", listenPort),
		controlURL: fmt.Sprintf("http://127.0.0.1:%d", controlPort),
		client: &http.Client{Transport: &http.Transport{
			DisableCompression: true, // compare the bytes gripd sends
			DisableKeepAlives:  true,
		}},
	}
	t.Cleanup(h.client.CloseIdleConnections)

	h.backend = startProc(t, "backend (node js/backend.js)", []string{
		"GRIP_CONTROL_URI=" + h.controlURL,
		"GRIP_SIG_KEY=" + sigKey,
		"GRIP_SIG_ISS=" + sigIss,
	}, "node", "js/backend.js", fmt.Sprint(backendPort))
	waitUntil(t, ctx, readyTimeout, "the node backend to print \"ready\"", func() (bool, string) {
		if h.backend.exited() {
			t.Fatalf("the node backend exited during start-up: %v\n%s", h.backend.waitErr, h.backend.out.String())
		}
		return strings.Contains(h.backend.out.String(), "ready\n"), h.backend.out.String()
	})

	var args []string
	if auth == nil {
		args = []string{
			"--listen", fmt.Sprintf("127.0.0.1:%d", listenPort),
			"--control-listen", fmt.Sprintf("127.0.0.1:%d", controlPort),
			"--sig-iss", sigIss, "--sig-key", sigKey,
			"--route", fmt.Sprintf("* 127.0.0.1:%d", backendPort),
		}
	} else {
		cfg := fmt.Sprintf(`listen: "127.0.0.1:%d"
control:
  listen: "127.0.0.1:%d"
  auth:
    key: %q
    iss: %q
signing:
  iss: %q
  key: %q
routes:
  - id: default
    backends: ["http://127.0.0.1:%d"]
`, listenPort, controlPort, auth.key, auth.iss, sigIss, sigKey, backendPort)
		path := filepath.Join(t.TempDir(), "gripd.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		args = []string{"--config", path}
	}
	args = append(args, "--admin-listen", "off")
	// gripd's output is only shown when a test fails: make it useful.
	lvl := os.Getenv("GRIPD_LOG_LEVEL")
	if lvl == "" {
		lvl = "debug"
	}
	args = append(args, "--log-level", lvl)
	h.gripd = startProc(t, "gripd", nil, gripdBin, args...)

	waitUntil(t, ctx, readyTimeout, "gripd to proxy GET /plain to the backend and its control API to answer GET / with 200", func() (bool, string) {
		if h.gripd.exited() {
			t.Fatalf("gripd exited during start-up (%s): %v\n%s", strings.Join(args, " "), h.gripd.waitErr, h.gripd.out.String())
		}
		cs, _, _, cerr := h.get(h.controlURL + "/")
		ps, _, pb, perr := h.get(h.proxyURL + "/plain")
		state := fmt.Sprintf("control GET /: status %d err %v; client GET /plain: status %d body %q err %v", cs, cerr, ps, pb, perr)
		return cerr == nil && cs == http.StatusOK && perr == nil && ps == http.StatusOK && pb == plainBody, state
	})
	return h, ctx
}

// get is a short, bounded GET used while polling for readiness.
func (h *harness) get(u string) (int, http.Header, string, error) {
	ctx, cancel := context.WithTimeout(h.ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, "", err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

// waitUntil polls cond every 20 ms until it holds, failing the test with
// cond's last description after timeout.
func waitUntil(t *testing.T, ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out after %v waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// publish runs js/publish.js (the @fanoutio/grip Publisher) against gripd's
// control API and returns its output; err is non-nil when it exited non-zero.
func (h *harness) publish(auth *controlAuth, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(h.ctx, publishBudget)
	defer cancel()
	all := append([]string{"js/publish.js", "--control-uri", h.controlURL}, args...)
	if auth != nil {
		all = append(all, "--iss", auth.iss, "--key", auth.key)
	}
	cmd := exec.CommandContext(ctx, "node", all...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (h *harness) mustPublish(auth *controlAuth, args ...string) {
	h.t.Helper()
	if out, err := h.publish(auth, args...); err != nil {
		h.t.Fatalf("publish %q failed (%v): %s", args, err, out)
	}
}

func channelName(name string) string {
	return fmt.Sprintf("it-%s-%d-%d", name, time.Now().UnixNano(), chanSeq.Add(1))
}

// ---------------------------------------------------------------------------
// A streaming client

type stream struct {
	mu     sync.Mutex
	data   []byte
	err    error // set when the body ended: io.EOF for a clean end
	notify chan struct{}
	resp   *http.Response
}

// openStream GETs path from gripd, requires a 200, and reads the body in the
// background.
func (h *harness) openStream(path string) *stream {
	h.t.Helper()
	ctx, cancel := context.WithCancel(h.ctx)
	h.t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.proxyURL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("GET %s through gripd: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		h.t.Fatalf("GET %s through gripd: status %d, want 200; body %q", path, resp.StatusCode, b)
	}
	s := &stream{notify: make(chan struct{}, 1), resp: resp}
	go func() {
		defer resp.Body.Close()
		buf := make([]byte, 32*1024)
		for {
			n, err := resp.Body.Read(buf)
			s.mu.Lock()
			s.data = append(s.data, buf[:n]...)
			if err != nil {
				s.err = err
			}
			s.mu.Unlock()
			select {
			case s.notify <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *stream) snapshot() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.data), s.err
}

// waitFor waits up to timeout for cond on what has arrived so far (and
// whether the body ended). It returns the last snapshot and whether cond held.
func (s *stream) waitFor(ctx context.Context, timeout time.Duration, cond func(text string, ended error) bool) (string, error, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		text, ended := s.snapshot()
		if cond(text, ended) {
			return text, ended, true
		}
		if ended != nil {
			return text, ended, false // nothing more will arrive
		}
		select {
		case <-s.notify:
		case <-timer.C:
			text, ended = s.snapshot()
			return text, ended, cond(text, ended)
		case <-ctx.Done():
			text, ended = s.snapshot()
			return text, ended, cond(text, ended)
		}
	}
}

func stripProbes(s string) string { return strings.ReplaceAll(s, probe, "") }

// prime publishes the probe to channel every 100 ms (bounded) until the
// stream has received one.
func (h *harness) prime(s *stream, channel string, auth *controlAuth) {
	h.t.Helper()
	start := time.Now()
	deadline := start.Add(primeTimeout)
	publishes := 0
	for {
		if text, ended := s.snapshot(); strings.Contains(text, probe) {
			h.t.Logf("stream on %q primed after %d publishes in %v", channel, publishes, time.Since(start).Round(time.Millisecond))
			return
		} else if ended != nil {
			h.t.Fatalf("the stream ended (%v) before any published content arrived; received %q", ended, text)
		}
		if time.Now().After(deadline) {
			text, _ := s.snapshot()
			h.t.Fatalf("no published http-stream content reached the client within %v (%d publishes of %q to channel %q were accepted); the client received %q",
				primeTimeout, publishes, probe, channel, text)
		}
		h.mustPublish(auth, "--channel", channel, "--stream", probe)
		publishes++
		s.waitFor(h.ctx, pollEvery, func(text string, _ error) bool { return strings.Contains(text, probe) })
	}
}

// ---------------------------------------------------------------------------
// Tests

// A client holds /stream open through gripd (Grip-Hold: stream from the
// serve-grip backend); three items published with the Publisher arrive as
// exactly their bytes, in order, and a close item ends the response.
func TestGripLibsStream(t *testing.T) {
	h, ctx := setup(t, nil)
	ch := channelName("stream")
	s := h.openStream("/stream?channel=" + url.QueryEscape(ch))
	if ct := s.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("stream Content-Type = %q, want the backend's text/event-stream", ct)
	}
	for _, hd := range []string{"Grip-Hold", "Grip-Channel"} {
		if v := s.resp.Header.Get(hd); v != "" {
			t.Errorf("gripd passed the backend's %s header (%q) to the client; GRIP headers must be removed", hd, v)
		}
	}
	if text, ended, ok := s.waitFor(ctx, 5*time.Second, func(text string, _ error) bool { return len(text) >= len(streamInitial) }); !ok || !strings.HasPrefix(text, streamInitial) {
		t.Fatalf("initial body: got %q (ended: %v), want it to start with the backend's %q", text, ended, streamInitial)
	}

	h.prime(s, ch, nil)

	msgs := []string{
		"data: message 1\n\n",
		"id: 2\ndata: message 2 \u2713 (UTF-8)\n\n",
		"event: last\ndata: message 3\n\n",
	}
	for i, m := range msgs {
		h.mustPublish(nil, "--channel", ch, "--stream", m, "--id", fmt.Sprintf("%s-%d", ch, i+1))
	}
	want := streamInitial + strings.Join(msgs, "")
	text, ended, ok := s.waitFor(ctx, 10*time.Second, func(text string, _ error) bool { return len(stripProbes(text)) >= len(want) })
	if got := stripProbes(text); !ok || got != want {
		t.Fatalf("after publishing 3 http-stream items the client has (probes removed)\n  %q\nwant exactly\n  %q\n(stream ended: %v)", got, want, ended)
	}

	// A close item ends the response; nothing else may have arrived.
	h.mustPublish(nil, "--channel", ch, "--close")
	text, ended, ok = s.waitFor(ctx, 5*time.Second, func(_ string, ended error) bool { return ended != nil })
	if !ok {
		t.Fatalf("the stream was still open 5 s after publishing an http-stream item with action close")
	}
	if !errors.Is(ended, io.EOF) {
		t.Errorf("after the close item the stream ended with %v, want a clean end of body", ended)
	}
	if got := stripProbes(text); got != want {
		t.Errorf("complete stream body (probes removed)\n  %q\nwant exactly\n  %q", got, want)
	}
}

type pollResult struct {
	status int
	header http.Header
	body   string
	err    error
}

func (h *harness) startPoll(path string) <-chan pollResult {
	done := make(chan pollResult, 1)
	go func() {
		req, err := http.NewRequestWithContext(h.ctx, http.MethodGet, h.proxyURL+path, nil)
		if err != nil {
			done <- pollResult{err: err}
			return
		}
		resp, err := h.client.Do(req)
		if err != nil {
			done <- pollResult{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- pollResult{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
	}()
	return done
}

// A client long-polls /poll through gripd (Grip-Hold: response from the
// serve-grip backend); an http-response published with the Publisher answers
// it with status 200 and exactly the published body.
func TestGripLibsLongPoll(t *testing.T) {
	h, _ := setup(t, nil)
	ch := channelName("poll")
	body := "{\"messages\":[\"hello \u2713\"]}\n"
	held := h.startPoll("/poll?timeout=20&channel=" + url.QueryEscape(ch))

	// Publish until the held request is answered (publishes before gripd
	// subscribed reach nobody; after the answer, they reach nobody either).
	deadline := time.Now().Add(primeTimeout)
	publishes := 0
	var r pollResult
wait:
	for {
		select {
		case r = <-held:
			break wait
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the long-poll was not answered within %v of publishing (%d http-response publishes to %q accepted)", primeTimeout, publishes, ch)
		}
		h.mustPublish(nil, "--channel", ch, "--response", body, "--code", "200", "--header", "X-Gripd-Test: long-poll")
		publishes++
		select {
		case r = <-held:
			break wait
		case <-time.After(pollEvery):
		}
	}
	if r.err != nil {
		t.Fatalf("long-poll GET failed: %v (status %d, body so far %q)", r.err, r.status, r.body)
	}
	if r.body == pollTimeout {
		t.Fatalf("the long-poll got the hold's timeout response %q (status %d), not the published http-response", r.body, r.status)
	}
	if r.status != http.StatusOK || r.body != body {
		t.Fatalf("long-poll answer: status %d body %q, want status 200 body %q", r.status, r.body, body)
	}
	if got := r.header.Get("X-Gripd-Test"); got != "long-poll" {
		t.Errorf("published header X-Gripd-Test = %q, want %q", got, "long-poll")
	}
	for _, hd := range []string{"Grip-Hold", "Grip-Channel", "Grip-Timeout"} {
		if v := r.header.Get(hd); v != "" {
			t.Errorf("gripd passed %s (%q) to the client", hd, v)
		}
	}
}

// With nothing published, the held long-poll gets the backend's original
// response once its Grip-Timeout passes. The backend asks for 1 s; like
// Pushpin, gripd holds for at least 5 s.
func TestGripLibsLongPollTimeout(t *testing.T) {
	h, ctx := setup(t, nil)
	start := time.Now()
	held := h.startPoll("/poll?timeout=1&channel=" + url.QueryEscape(channelName("poll-timeout")))
	var r pollResult
	select {
	case r = <-held:
	case <-time.After(15 * time.Second):
		t.Fatalf("a long-poll with Grip-Timeout: 1 (held for the 5 s minimum) was still unanswered after 15 s")
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if r.err != nil || r.status != http.StatusOK || r.body != pollTimeout {
		t.Fatalf("timed-out long-poll: status %d body %q err %v, want 200 %q", r.status, r.body, r.err, pollTimeout)
	}
	if el := time.Since(start); el < 4900*time.Millisecond {
		t.Errorf("Grip-Timeout: 1 was answered after %v; Pushpin (and gripd) hold for at least 5 s", el)
	}
}

// gripd configured (YAML) to require control-API JWTs: the Publisher with
// control_iss and the right key gets through; a wrong key, the wrong iss or
// no auth is refused with 401 and nothing reaches the client.
func TestGripLibsControlAuth(t *testing.T) {
	good := &controlAuth{iss: "gripd-it-publisher", key: fmt.Sprintf("control-secret-%d", time.Now().UnixNano())}
	h, ctx := setup(t, good)
	ch := channelName("auth")
	s := h.openStream("/stream?channel=" + url.QueryEscape(ch))
	if text, ended, ok := s.waitFor(ctx, 5*time.Second, func(text string, _ error) bool { return strings.HasPrefix(text, streamInitial) }); !ok {
		t.Fatalf("initial body: got %q (ended: %v), want it to start with %q", text, ended, streamInitial)
	}

	// The right credentials work (the probes are published with them).
	h.prime(s, ch, good)

	refused := func(label string, auth *controlAuth) {
		t.Helper()
		out, err := h.publish(auth, "--channel", ch, "--stream", "data: must not arrive ("+label+")\n\n")
		if err == nil {
			t.Errorf("publish with %s succeeded (%s), want it refused with 401", label, out)
			return
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Errorf("publish with %s: %v (%s)", label, err, out)
			return
		}
		if !strings.Contains(out, "401") {
			t.Errorf("publish with %s failed, but not with 401: %s", label, out)
		}
	}
	refused("a wrong key", &controlAuth{iss: good.iss, key: good.key + "-wrong"})
	refused("the wrong iss", &controlAuth{iss: good.iss + "-other", key: good.key})
	refused("no Authorization", nil)

	h.mustPublish(good, "--channel", ch, "--stream", "data: authorised\n\n")
	want := streamInitial + "data: authorised\n\n"
	text, ended, ok := s.waitFor(ctx, 10*time.Second, func(text string, _ error) bool { return strings.Contains(text, "data: authorised\n\n") })
	if got := stripProbes(text); !ok || got != want {
		t.Fatalf("client stream (probes removed)\n  %q\nwant exactly\n  %q\n(stream ended: %v)", got, want, ended)
	}
}
