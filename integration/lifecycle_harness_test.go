// lifecycle_harness_test.go holds what the churn and drain tests share:
// one gripd process with its admin listener, a Go GRIP backend, raw SSE
// clients (one goroutine each, so thousands fit under the race
// detector's goroutine limit) and a reader of gripd's /metrics.

package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gripd/gripd/internal/testutil"
)

// lifecycleGripd is one gripd process in front of a Go GRIP backend.
type lifecycleGripd struct {
	proc    *fleetProc
	listen  string // client address
	control string // control API address
	admin   string // admin address
}

// startLifecycleGripd starts the backend and gripd with extra flags, and
// waits until gripd proxies and its admin listener answers.
func startLifecycleGripd(t *testing.T, extra ...string) *lifecycleGripd {
	t.Helper()
	bin := wsChatGripd(t)
	backend := startLifecycleBackend(t)
	g := &lifecycleGripd{
		listen:  testutil.FreeAddr(t),
		control: testutil.FreeAddr(t),
		admin:   testutil.FreeAddr(t),
	}
	args := append([]string{
		"--listen", g.listen, "--control-listen", g.control, "--admin-listen", g.admin,
		"--route", "* " + backend, "--log-level", "info",
	}, extra...)
	g.proc = startFleetProc(t, "gripd", bin, args...)
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	waitUntil(t, ctx, readyTimeout, "gripd to proxy /plain and answer /readyz", func() (bool, string) {
		if g.proc.exited() {
			t.Fatalf("gripd exited during start-up: %v\n%s", g.proc.waitErr, g.proc.out.String())
		}
		code, body := httpGet("http://" + g.listen + "/plain")
		ready, _ := httpGet("http://" + g.admin + "/readyz")
		return code == 200 && ready == 200, fmt.Sprintf("GET /plain: %d %q; /readyz %d", code, body, ready)
	})
	return g
}

// startLifecycleBackend holds GET /sse/{ch} as an SSE stream on channel
// ch and GET /poll/{ch} as a long-poll, and answers /plain. It closes
// each connection after its answer, so its goroutines do not pile up
// beside thousands of clients.
func startLifecycleBackend(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sse/{ch}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "close")
		h.Set("Grip-Hold", "stream")
		h.Set("Grip-Channel", r.PathValue("ch"))
		h.Set("Content-Type", "text/event-stream")
		io.WriteString(w, ":held\n\n")
	})
	mux.HandleFunc("GET /poll/{ch}", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Connection", "close")
		h.Set("Grip-Hold", "response")
		h.Set("Grip-Channel", r.PathValue("ch"))
		h.Set("Grip-Timeout", "3600")
		io.WriteString(w, "timeout\n")
	})
	mux.HandleFunc("GET /plain", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	return testutil.Backend(t, mux.ServeHTTP).Listener.Addr().String()
}

// httpGet is a short GET without keep-alive; code 0 means no answer.
func httpGet(u string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// publish posts one http-stream and http-response item to channel. Like
// a well-behaved publisher it retries, a few times, a 503 that carries
// Retry-After: gripd pushing back while its delivery runs behind (a busy
// machine under -race can get there), which is not what these tests are
// about.
func (g *lifecycleGripd) publish(channel, content string) error {
	body := fmt.Sprintf(`{"items":[{"channel":%q,"formats":{"http-stream":{"content":%q},"http-response":{"body":%q}}}]}`,
		channel, content, content)
	c := &http.Client{Timeout: 10 * time.Second}
	for try := 1; ; try++ {
		resp, err := c.Post("http://"+g.control+"/publish/", "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == 200:
			return nil
		case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" && try < 5:
			time.Sleep(time.Second) // the Retry-After gripd sends
		default:
			return fmt.Errorf("publish: %s %q", resp.Status, msg)
		}
	}
}

// metrics reads gripd's /metrics into name{labels} -> value.
func (g *lifecycleGripd) metrics() (map[string]float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + g.admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// held is the number of held connections gripd reports, all kinds.
func held(m map[string]float64) float64 {
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, "gripd_held_connections{") {
			n += v
		}
	}
	return n
}

// sseClient is one raw HTTP/1.1 connection holding an SSE stream: one
// goroutine reads it and counts the published lines.
type sseClient struct {
	conn    net.Conn
	held    chan struct{} // closed when the initial body arrived
	items   atomic.Int64  // "data:" lines received
	ended   chan struct{} // closed when the stream ended
	cleanly atomic.Bool   // ended with the chunked terminator
	endedAt atomic.Int64  // unix nanoseconds
}

// dialSSE opens GET path on addr and starts reading it.
func dialSSE(addr, path string) (*sseClient, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: churn.test\r\nAccept: text/event-stream\r\n\r\n", path); err != nil {
		conn.Close()
		return nil, err
	}
	c := &sseClient{conn: conn, held: make(chan struct{}), ended: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *sseClient) read() {
	defer func() {
		c.endedAt.Store(time.Now().UnixNano())
		close(c.ended)
	}()
	r := bufio.NewReaderSize(c.conn, 2048)
	heldSeen := false
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		switch {
		case !heldSeen && bytes.HasPrefix(line, []byte(":held")):
			heldSeen = true
			close(c.held)
		case bytes.HasPrefix(line, []byte("data:")):
			c.items.Add(1)
		case bytes.Equal(line, []byte("0\r\n")):
			c.cleanly.Store(true)
		}
	}
}

// close drops the connection the way a closed browser tab does.
func (c *sseClient) close() { c.conn.Close() }

// waitAll waits for ch of every client, or fails after timeout.
func waitAll(t *testing.T, clients []*sseClient, timeout time.Duration, what string, ch func(*sseClient) chan struct{}) {
	t.Helper()
	deadline := time.After(timeout)
	for i, c := range clients {
		select {
		case <-ch(c):
		case <-deadline:
			t.Fatalf("%s: client %d of %d still waiting after %v", what, i, len(clients), timeout)
		}
	}
}
