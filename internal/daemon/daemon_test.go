package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/internal/config"
	"github.com/gripd/gripd/internal/testutil"
)

// failAfter bounds every wait in these tests; passing runs take far less.
const failAfter = 10 * time.Second

// testDaemon is a gripd started in-process from a config file the test
// can rewrite.
type testDaemon struct {
	d       *Daemon
	path    string // the config file
	signals chan os.Signal
	done    chan error // run's result
	reloads chan bool  // each reload's outcome
}

// daemonYAML is a config on loopback ports chosen by the kernel, with the
// test's routes and extra top-level settings.
func daemonYAML(extra, backend string) string {
	return `listen: "127.0.0.1:0"
control: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
` + extra + `
routes:
  - id: main
    backends: ["` + backend + `"]
`
}

func startTestDaemon(t *testing.T, yamlText string) *testDaemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gripd.yaml")
	writeFile(t, path, yamlText)
	src := &config.Source{Path: path}
	cfg, err := src.Load()
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg, src)
	td := &testDaemon{d: d, path: path, signals: make(chan os.Signal, 4), done: make(chan error, 1), reloads: make(chan bool, 16)}
	countReload := d.reload.onResult // the metric
	d.reload.onResult = func(ok bool) { countReload(ok); td.reloads <- ok }
	d.reload.watchEvery = 20 * time.Millisecond
	go func() { td.done <- d.Run(context.Background(), td.signals) }()
	t.Cleanup(func() {
		td.signals <- syscall.SIGTERM
		td.signals <- syscall.SIGTERM // no drain window in cleanup
		select {
		case <-td.done:
		case <-time.After(failAfter):
			t.Error("gripd did not stop")
		}
	})
	return td
}

// startDaemon builds and starts a daemon from cfg, reloading from src.
func startDaemon(t *testing.T, cfg *config.Config, src *config.Source) *Daemon {
	t.Helper()
	d, err := New(cfg, Options{Log: zerolog.Nop(), Source: src, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		d.Close()
		t.Fatal(err)
	}
	return d
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	// Write beside and rename, as config tools do, so the watcher never
	// sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func (td *testDaemon) url(path string) string {
	return "http://" + td.d.ClientAddr().String() + path
}

func (td *testDaemon) admin(path string) string {
	return "http://" + td.d.AdminAddr().String() + path
}

func (td *testDaemon) publish(t *testing.T, channel, content string) {
	t.Helper()
	body := fmt.Sprintf(`{"items":[{"channel":%q,"formats":{"http-stream":{"content":%q},"http-response":{"body":%q}}}]}`,
		channel, content, content)
	resp, err := http.Post("http://"+td.d.ControlAddr().String()+"/publish/", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("publish: %s", resp.Status)
	}
}

func (td *testDaemon) awaitReload(t *testing.T) bool {
	t.Helper()
	select {
	case ok := <-td.reloads:
		return ok
	case <-time.After(failAfter):
		t.Fatal("no reload")
		return false
	}
}

// backend answers plainly with its name, and holds /stream as a GRIP
// stream on channel "news" and /poll as a long-poll on channel "news".
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	return testutil.Backend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			w.Header().Set("Grip-Hold", "stream")
			w.Header().Set("Grip-Channel", "news")
			io.WriteString(w, "hello from "+name+"\n")
		case "/poll":
			w.Header().Set("Grip-Hold", "response")
			w.Header().Set("Grip-Channel", "news")
			w.Header().Set("Grip-Timeout", "3600")
			io.WriteString(w, "timeout from "+name+"\n")
		default:
			io.WriteString(w, name+"\n")
		}
	})
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// openStream starts a held stream and reads its initial body line.
func openStream(t *testing.T, url string) (*testutil.Stream, func()) {
	t.Helper()
	s := testutil.OpenStream(t, url, nil)
	s.ReadLine()
	return s, s.Close
}

func TestReloadBadFileKeepsServingOldRoutes(t *testing.T) {
	a := backend(t, "A")
	td := startTestDaemon(t, daemonYAML("", a.URL))
	writeFile(t, td.path, "routes: [this is not: a route\n")
	if err := td.d.Reload("test"); err == nil {
		t.Fatal("Reload of a broken file: no error")
	}
	if got := getBody(t, td.url("/")); got != "A\n" {
		t.Errorf("after a failed reload GET / = %q, want the old route's %q", got, "A\n")
	}
	// A valid file that fails a check (a route with no backends) too.
	writeFile(t, td.path, daemonYAML("", ""))
	if err := td.d.Reload("test"); err == nil {
		t.Fatal("Reload of a file with an empty backend: no error")
	}
	if got := getBody(t, td.url("/")); got != "A\n" {
		t.Errorf("GET / = %q, want %q", got, "A\n")
	}
}

// TestReloadReroutesWhileHeldStreamKeepsReceiving is the point of a live
// reload: new requests follow the new routes, a stream held through the
// old route stays open and keeps getting what is published.
func TestReloadReroutesWhileHeldStreamKeepsReceiving(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	td := startTestDaemon(t, daemonYAML("", a.URL))
	stream, closeStream := openStream(t, td.url("/stream"))
	defer closeStream()

	writeFile(t, td.path, daemonYAML("", b.URL))
	td.signals <- syscall.SIGHUP
	if !td.awaitReload(t) {
		t.Fatal("reload with a good file failed")
	}
	if got := getBody(t, td.url("/")); got != "B\n" {
		t.Errorf("after the reload GET / = %q, want %q", got, "B\n")
	}
	td.publish(t, "news", "after the reload\n")
	if got := stream.ReadLine(); got != "after the reload\n" {
		t.Errorf("held stream got %q after the reload", got)
	}
}

func TestReloadOnFileChange(t *testing.T) {
	a, b := backend(t, "A"), backend(t, "B")
	td := startTestDaemon(t, daemonYAML("", a.URL))
	writeFile(t, td.path, daemonYAML("", b.URL))
	if !td.awaitReload(t) {
		t.Fatal("reload after the file changed failed")
	}
	if got := getBody(t, td.url("/")); got != "B\n" {
		t.Errorf("GET / = %q, want %q", got, "B\n")
	}
}

// TestReloadSigningAndBackendTimeout: a new signing key signs the next
// request, and a shorter backend timeout applies to the next request.
func TestReloadSigningAndBackendTimeout(t *testing.T) {
	sigs := make(chan string, 4)
	slow := make(chan struct{})
	defer close(slow)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-slow:
			case <-r.Context().Done():
			}
		}
		sigs <- r.Header.Get("Grip-Sig")
	}))
	defer srv.Close()
	td := startTestDaemon(t, daemonYAML("signing: {key: old-key}", srv.URL))
	getBody(t, td.url("/"))
	if _, err := grip.ValidateSig(<-sigs, []byte("old-key")); err != nil {
		t.Fatalf("before the reload: %v", err)
	}
	writeFile(t, td.path, daemonYAML("signing: {key: new-key}\nbackend_timeout: 50ms", srv.URL))
	if err := td.d.Reload("test"); err != nil {
		t.Fatal(err)
	}
	getBody(t, td.url("/"))
	if _, err := grip.ValidateSig(<-sigs, []byte("new-key")); err != nil {
		t.Errorf("after the reload the new key does not check: %v", err)
	}
	resp, err := http.Get(td.url("/slow"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("slow backend after backend_timeout: 50ms: %s, want 504", resp.Status)
	}
}

// TestReloadLimits: a smaller request body limit applies to the next
// request.
func TestReloadLimits(t *testing.T) {
	a := backend(t, "A")
	td := startTestDaemon(t, daemonYAML("", a.URL))
	post := func() int {
		resp, err := http.Post(td.url("/"), "text/plain", strings.NewReader(strings.Repeat("x", 2000)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(); code != 200 {
		t.Fatalf("2000-byte body before the reload: %d", code)
	}
	writeFile(t, td.path, daemonYAML("limits: {max_request_body: 1000}", a.URL))
	if err := td.d.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if code := post(); code != http.StatusRequestEntityTooLarge {
		t.Errorf("2000-byte body after max_request_body: 1000: %d, want 413", code)
	}
}

func TestReloadKeepsRestartOnlySettings(t *testing.T) {
	a := backend(t, "A")
	td := startTestDaemon(t, daemonYAML("", a.URL))
	running := td.d.Config()
	next := strings.Replace(daemonYAML("subscriber_queue: 7", a.URL), `listen: "127.0.0.1:0"`, `listen: "127.0.0.1:1"`, 1)
	writeFile(t, td.path, next)
	if err := td.d.Reload("test"); err != nil {
		t.Fatal(err)
	}
	cur := td.d.Config()
	if cur.Listen != running.Listen {
		t.Errorf("listen after reload = %q, want the running %q kept", cur.Listen, running.Listen)
	}
	if cur.SubscriberQueue != 7 {
		t.Errorf("subscriber_queue after reload = %d, want 7 (live)", cur.SubscriberQueue)
	}
}

func readyz(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDrainEndsHeldConnections: on SIGTERM /readyz fails, new clients
// are refused, the stream ends cleanly, the long-poll gets its timeout
// response, and gripd returns.
func TestDrainEndsHeldConnections(t *testing.T) {
	a := backend(t, "A")
	td := startTestDaemon(t, daemonYAML("drain: {duration: 300ms}", a.URL))
	stream, closeStream := openStream(t, td.url("/stream"))
	defer closeStream()
	poll := make(chan string, 1)
	go func() {
		resp, err := http.Get(td.url("/poll"))
		if err != nil {
			poll <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		poll <- string(b)
	}()
	testutil.WaitFor(t, "both held", func() bool { return td.d.hub.Stats().Subscribers >= 2 })
	if m := getBody(t, td.admin("/metrics")); !strings.Contains(m, "\ngripd_client_connections 2\n") {
		t.Errorf("/metrics does not count the two held clients:\n%s", grepLines(m, "gripd_client_connections"))
	}
	readyURL := td.admin("/readyz")
	if code := readyz(t, readyURL); code != 200 {
		t.Fatalf("/readyz before the drain: %d", code)
	}

	td.signals <- syscall.SIGTERM
	testutil.WaitFor(t, "/readyz to fail once draining", func() bool { return readyz(t, readyURL) == http.StatusServiceUnavailable })
	if conn, err := net.Dial("tcp", td.d.ClientAddr().String()); err == nil {
		conn.Close()
		t.Error("the client listener still accepts while draining")
	}
	rest, _ := stream.ReadRest() // a clean end: no error from the chunked reader
	if len(rest) != 0 {
		t.Errorf("stream got %q at its end, want nothing", rest)
	}
	if got := <-poll; got != "timeout from A\n" {
		t.Errorf("long-poll got %q, want its timeout response", got)
	}
	select {
	case err := <-td.done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
		td.done <- nil // for the cleanup
	case <-time.After(failAfter):
		t.Fatal("gripd did not exit after the drain")
	}
}

// TestDrainSecondSignalEndsAtOnce: an hour-long drain window, cut short.
func TestDrainSecondSignalEndsAtOnce(t *testing.T) {
	a := backend(t, "A")
	td := startTestDaemon(t, daemonYAML("drain: {duration: 1h}", a.URL))
	stream, closeStream := openStream(t, td.url("/stream"))
	defer closeStream()
	td.signals <- syscall.SIGTERM
	td.signals <- syscall.SIGINT
	select {
	case err := <-td.done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
		td.done <- nil
	case <-time.After(failAfter):
		t.Fatal("gripd did not exit on the second signal")
	}
	_, _ = stream.ReadRest() // ends: gripd is gone
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
