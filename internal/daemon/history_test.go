package daemon

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/internal/config"
	"github.com/gripd/gripd/internal/testutil"
)

// History without NATS is a start-up error that says what to set.
func TestHistoryNeedsNATS(t *testing.T) {
	b := backend(t, "a")
	path := t.TempDir() + "/gripd.yaml"
	writeFile(t, path, daemonYAML("history: {enabled: true}", b.URL))
	src := &config.Source{Path: path}
	cfg, err := src.Load()
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{Log: zerolog.Nop(), Source: src})
	if err == nil {
		d.Close()
		t.Fatal("gripd started with history and no NATS")
	}
	if !strings.Contains(err.Error(), "history.enabled needs NATS with JetStream") || !strings.Contains(err.Error(), "nats.embedded.listen") {
		t.Fatalf("error %q", err)
	}
}

// With history on and NATS embedded, a client that comes back with
// Last-Event-ID gets what it missed, then live items; the temporary
// store goes when gripd does.
func TestHistoryResumeEmbedded(t *testing.T) {
	testHistoryResumeEmbedded(t, fmt.Sprintf("history: {enabled: true}\nnats: {embedded: {listen: %q}}", testutil.FreeAddr(t)))
}

// The same with users on the embedded server: JetStream works for gripd's
// own connection when the server asks for credentials.
func TestHistoryResumeEmbeddedWithNATSAuth(t *testing.T) {
	testHistoryResumeEmbedded(t, "history: {enabled: true}\n"+embeddedAuthYAML(testutil.FreeAddr(t)))
}

func testHistoryResumeEmbedded(t *testing.T, extra string) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the store goes
	b := backend(t, "a")
	td := startTestDaemon(t, daemonYAML(extra, b.URL))
	for i := 1; i <= 3; i++ {
		td.publishID(t, "news", fmt.Sprint(i))
	}
	r := testutil.OpenStream(t, td.url("/stream"), http.Header{"Last-Event-ID": {"1"}})
	if got := r.ReadLine(); got != "hello from a\n" {
		t.Fatalf("initial body %q", got)
	}
	for _, want := range []string{"event 2\n", "event 3\n"} {
		if got := r.ReadLine(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	td.publishID(t, "news", "3") // a retry: delivered once
	td.publishID(t, "news", "4")
	if got := r.ReadLine(); got != "event 4\n" {
		t.Fatalf("got %q, want event 4", got)
	}
	if dirs, _ := os.ReadDir(tmp); len(dirs) != 1 || !strings.HasPrefix(dirs[0].Name(), "gripd-nats-") {
		t.Fatalf("temporary dir holds %v, want the JetStream store", dirs)
	}
	r.Close()
	td.signals <- syscall.SIGTERM
	td.signals <- syscall.SIGTERM
	select {
	case err := <-td.done:
		td.done <- err // for the cleanup
	case <-time.After(failAfter):
		t.Fatal("gripd did not stop")
	}
	if dirs, _ := os.ReadDir(tmp); len(dirs) != 0 {
		t.Fatalf("after gripd stopped, the temporary dir holds %v", dirs)
	}
}

// publishID publishes an http-stream item with an id; its content says
// which.
func (td *testDaemon) publishID(t *testing.T, channel, id string) {
	t.Helper()
	body := fmt.Sprintf(`{"items":[{"channel":%q,"id":%q,"formats":{"http-stream":{"content":"event %s\n"}}}]}`, channel, id, id)
	resp, err := http.Post("http://"+td.d.ControlAddr().String()+"/publish/", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("publish: %s", resp.Status)
	}
}

// Two instances whose embedded NATS servers form a cluster, with history:
// both start (JetStream elects its leader meanwhile, each start waiting
// for the other), and a client resumes on one from what was published
// through the other.
func TestHistoryEmbeddedCluster(t *testing.T) {
	testHistoryEmbeddedCluster(t, func(i int, listen, cluster []string) string {
		return fmt.Sprintf("nats: {embedded: {listen: %q, cluster: {name: g, listen: %q, routes: [\"nats://%s\"]}}}",
			listen[i], cluster[i], cluster[1-i])
	})
}

// The same with the fleet locked down: users on the client ports, TLS on
// them, and routes that present a user and password over mutual TLS.
func TestHistoryEmbeddedClusterWithNATSAuthAndTLS(t *testing.T) {
	certs := writeTestCerts(t)
	testHistoryEmbeddedCluster(t, func(i int, listen, cluster []string) string {
		return fmt.Sprintf(`nats:
  embedded:
    listen: %q
    users: [{user: pub, password: pub-secret}]
    tls: {cert: %q, key: %q}
    cluster:
      name: g
      listen: %q
      routes: ["nats://%s"]
      user: route
      password: route-secret
      tls: {cert: %q, key: %q, ca: %q}
`, listen[i], certs.cert, certs.key, cluster[i], cluster[1-i], certs.cert, certs.key, certs.ca)
	})
}

func testHistoryEmbeddedCluster(t *testing.T, natsYAML func(i int, listen, cluster []string) string) {
	b := backend(t, "a")
	listen := []string{testutil.FreeAddr(t), testutil.FreeAddr(t)}
	cluster := []string{testutil.FreeAddr(t), testutil.FreeAddr(t)}
	type started struct {
		i   int
		td  *testDaemon
		err error
	}
	results := make(chan started, 2)
	for i := range 2 {
		go func() {
			path := filepath.Join(t.TempDir(), "gripd.yaml")
			writeFile(t, path, daemonYAML("history: {enabled: true}\n"+natsYAML(i, listen, cluster), b.URL))
			src := &config.Source{Path: path}
			cfg, err := src.Load()
			if err != nil {
				results <- started{i: i, err: err}
				return
			}
			d, err := New(cfg, Options{Log: zerolog.Nop(), Source: src})
			if err == nil {
				if err = d.Start(); err != nil {
					d.Close()
				}
			}
			if err != nil {
				results <- started{i: i, err: err}
				return
			}
			td := &testDaemon{d: d, path: path, signals: make(chan os.Signal, 4), done: make(chan error, 1)}
			go func() { td.done <- d.Run(context.Background(), td.signals) }()
			results <- started{i: i, td: td}
		}()
	}
	tds := make([]*testDaemon, 2)
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Errorf("gripd %d: %v", r.i, r.err)
			continue
		}
		tds[r.i] = r.td
		t.Cleanup(func() {
			r.td.signals <- syscall.SIGTERM
			r.td.signals <- syscall.SIGTERM
			select {
			case <-r.td.done:
			case <-time.After(failAfter):
				t.Error("gripd did not stop")
			}
		})
	}
	if t.Failed() {
		t.FailNow()
	}
	for i := 1; i <= 3; i++ {
		tds[0].publishID(t, "news", fmt.Sprint(i))
	}
	r := testutil.OpenStream(t, tds[1].url("/stream"), http.Header{"Last-Event-ID": {"1"}})
	for _, want := range []string{"hello from a\n", "event 2\n", "event 3\n"} {
		if got := r.ReadLine(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}
