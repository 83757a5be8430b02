package integration

// Browser tests: the demo app (examples/chat) and gripd's status page in
// headless Chromium, driven by js/browser.js with playwright-core (pinned
// in package-lock.json; it downloads no browser and starts Debian's
// /usr/bin/chromium). Each test starts the chat backend and gripd in front
// of it, with the admin listener on, and runs one scenario of the script;
// the script's steps say what a user would see, and its screenshots go to
// a temporary directory, or to $GRIPD_SCREENSHOTS to keep them.
//
// Without Chromium these tests fail, saying how to install it, unless
// GRIPD_SKIP_BROWSER=1 (or GRIPD_SKIP_NODE=1) says to skip them.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gripd/gripd/internal/testutil"
)

// browserBudget bounds one run of js/browser.js (it cuts itself off at 120 s).
const browserBudget = 150 * time.Second

// chromiumPath is the browser the tests drive: $GRIPD_CHROMIUM, else
// Debian's package.
func chromiumPath() string {
	if p := os.Getenv("GRIPD_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// requireBrowser fails the test (never skips silently) when Node,
// playwright-core or Chromium is missing, unless GRIPD_SKIP_BROWSER=1.
func requireBrowser(t *testing.T) {
	t.Helper()
	if os.Getenv("GRIPD_SKIP_BROWSER") == "1" {
		t.Skip("GRIPD_SKIP_BROWSER=1: skipping the browser tests")
	}
	requireNode(t)
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		t.Fatalf("integration/node_modules/playwright-core is missing: `make test-deps` (or `npm ci` in integration/) installs it " +
			"(or set GRIPD_SKIP_BROWSER=1 to skip the browser tests)")
	}
	p := chromiumPath()
	if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		t.Fatalf("Chromium is not at %s (%v). The browser tests drive Debian's chromium package: "+
			"`apt-get install -y --no-install-recommends chromium` (`make test-deps` does it as root), or set GRIPD_CHROMIUM=/path/to/chromium, "+
			"or GRIPD_SKIP_BROWSER=1 to skip them", p, err)
	}
}

// buildExample builds ../examples/<name> into a temporary directory.
func buildExample(t *testing.T, name string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("cannot build examples/%s: %v", name, err)
	}
	out := filepath.Join(t.TempDir(), name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, goTool, "build", "-o", out, "../examples/"+name).CombinedOutput(); err != nil {
		t.Fatalf("go build -o %s ../examples/%s: %v\n%s", out, name, err, b)
	}
	return out
}

// demo is the chat backend with gripd in front of it, as `make demo` runs
// them, on free ports.
type demo struct {
	appURL, adminURL string
}

// startDemo starts examples/chat and gripd (clients, control API and
// admin listener on free ports) and waits until gripd serves the chat
// page and the status page.
func startDemo(t *testing.T, ctx context.Context) *demo {
	t.Helper()
	chat := buildExample(t, "chat")
	backendPort, listenPort, controlPort, adminPort := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
	d := &demo{
		appURL:   fmt.Sprintf("http://127.0.0.1:%d", listenPort),
		adminURL: fmt.Sprintf("http://127.0.0.1:%d", adminPort),
	}
	controlURL := fmt.Sprintf("http://127.0.0.1:%d", controlPort)
	startProc(t, "chat backend", nil, chat,
		"-listen", fmt.Sprintf("127.0.0.1:%d", backendPort),
		"-publish-url", controlURL+"/publish/")
	lvl := os.Getenv("GRIPD_LOG_LEVEL")
	if lvl == "" {
		lvl = "debug"
	}
	args := []string{
		"--listen", fmt.Sprintf("127.0.0.1:%d", listenPort),
		"--control-listen", fmt.Sprintf("127.0.0.1:%d", controlPort),
		"--admin-listen", fmt.Sprintf("127.0.0.1:%d", adminPort),
		"--route", fmt.Sprintf("* 127.0.0.1:%d,over_http", backendPort),
		"--drain-duration", "0",
		"--log-level", lvl,
	}
	g := startProc(t, "gripd", nil, gripdBin, args...)

	h := &harness{t: t, ctx: ctx, client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	t.Cleanup(h.client.CloseIdleConnections)
	waitUntil(t, ctx, readyTimeout, "gripd to serve the chat page (GET / through gripd) and the status page (GET / on the admin listener)", func() (bool, string) {
		if g.exited() {
			t.Fatalf("gripd exited during start-up (%s): %v\n%s", strings.Join(args, " "), g.waitErr, g.out.String())
		}
		as, _, ab, aerr := h.get(d.appURL + "/")
		ss, _, sb, serr := h.get(d.adminURL + "/")
		cs, _, _, cerr := h.get(controlURL + "/")
		state := fmt.Sprintf("app GET /: %d err %v; admin GET /: %d err %v; control GET /: %d err %v", as, aerr, ss, serr, cs, cerr)
		return aerr == nil && as == 200 && strings.Contains(ab, "chat.js") &&
			serr == nil && ss == 200 && strings.Contains(sb, "status.js") && cerr == nil && cs == 200, state
	})
	return d
}

// screenshotDir is where screenshots go: $GRIPD_SCREENSHOTS (created if
// needed) to keep them for review, else a directory removed after the test.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("GRIPD_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("GRIPD_SCREENSHOTS=%s: %v", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// runBrowser runs one scenario of js/browser.js against d and fails the
// test with the script's steps when it does not end with "ok".
func runBrowser(t *testing.T, ctx context.Context, d *demo, out string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, browserBudget)
	defer cancel()
	all := append([]string{"js/browser.js"}, args...)
	all = append(all, "--app", d.appURL, "--admin", d.adminURL, "--out", out)
	cmd := exec.CommandContext(ctx, "node", all...)
	cmd.Env = append(os.Environ(), "GRIPD_CHROMIUM="+chromiumPath())
	start := time.Now()
	b, err := cmd.CombinedOutput()
	text := strings.TrimSpace(string(b))
	if err != nil || !strings.HasSuffix(text, "\nok") {
		t.Fatalf("node %s: %v after %v\n%s", strings.Join(all, " "), err, time.Since(start).Round(time.Millisecond), text)
	}
	t.Logf("node js/browser.js %s: ok in %v\n%s", args[0], time.Since(start).Round(time.Millisecond), text)
}

// requirePNG checks that the script wrote a PNG screenshot.
func requirePNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 1000 {
		t.Fatalf("screenshot %s is not a PNG image (%d bytes)", path, len(b))
	}
}

// Two windows of the demo exchange messages, over each transport in turn;
// both show both messages, from the right sender and transport; closing
// them leaves no held connection in gripd. On a phone (390 px) the page
// fits the screen, Send on it, and what is sent there arrives.
func TestBrowserChat(t *testing.T) {
	requireBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*browserBudget)
	t.Cleanup(cancel)
	d := startDemo(t, ctx)
	out := screenshotDir(t)
	for _, transport := range []string{"sse", "ws", "poll"} {
		t.Run(transport, func(t *testing.T) {
			runBrowser(t, ctx, d, out, "chat", "--transport", transport)
			requirePNG(t, filepath.Join(out, "chat-"+transport+".png"))
		})
	}
	t.Run("phone", func(t *testing.T) {
		runBrowser(t, ctx, d, out, "phone")
		requirePNG(t, filepath.Join(out, "chat-phone.png"))
	})
}

// The status page counts the demo's windows as they open (by kind) and
// close, lists their room among the busiest channels, and counts the
// publishes and deliveries of their messages.
func TestBrowserStatusPage(t *testing.T) {
	requireBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*browserBudget)
	t.Cleanup(cancel)
	d := startDemo(t, ctx)
	out := screenshotDir(t)
	runBrowser(t, ctx, d, out, "status")
	requirePNG(t, filepath.Join(out, "status.png"))
	requirePNG(t, filepath.Join(out, "chat.png"))
}
