package integration

// The ws-chat example (examples/ws-chat, a stateless WebSocket-over-HTTP
// backend) behind gripd on an over_http route, driven by real WebSocket
// clients: a message one client sends reaches every client in the room.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/internal/testutil"
)

// buildWSChat builds ../examples/ws-chat into a temporary directory.
func buildWSChat(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("cannot build examples/ws-chat: %v", err)
	}
	out := filepath.Join(t.TempDir(), "ws-chat")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, goTool, "build", "-o", out, "../examples/ws-chat").CombinedOutput(); err != nil {
		t.Fatalf("go build -o %s ../examples/ws-chat: %v\n%s", out, err, b)
	}
	return out
}

// wsChatGripd returns the gripd binary. This test needs no Node, so with
// GRIPD_SKIP_NODE=1 (when TestMain builds nothing) it builds gripd itself.
func wsChatGripd(t *testing.T) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("building gripd failed: %v", buildErr)
	}
	if gripdBin != "" {
		return gripdBin
	}
	bin := filepath.Join(t.TempDir(), "gripd")
	if err := buildGripd(bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestWSChat(t *testing.T) {
	gripd := wsChatGripd(t)
	chat := buildWSChat(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)

	backendPort, listenPort, controlPort := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
	proxyURL := fmt.Sprintf("http://127.0.0.1:%d", listenPort)
	controlURL := fmt.Sprintf("http://127.0.0.1:%d", controlPort)
	wsURL := fmt.Sprintf("ws://127.0.0.1:%d", listenPort)

	startProc(t, "ws-chat", nil, chat,
		"-listen", fmt.Sprintf("127.0.0.1:%d", backendPort),
		"-publish-url", controlURL+"/publish/")
	lvl := os.Getenv("GRIPD_LOG_LEVEL")
	if lvl == "" {
		lvl = "debug"
	}
	g := startProc(t, "gripd", nil, gripd,
		"--listen", fmt.Sprintf("127.0.0.1:%d", listenPort),
		"--control-listen", fmt.Sprintf("127.0.0.1:%d", controlPort),
		"--admin-listen", "off",
		"--route", fmt.Sprintf("* 127.0.0.1:%d,over_http", backendPort),
		"--log-level", lvl)

	h := &harness{t: t, ctx: ctx, client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	t.Cleanup(h.client.CloseIdleConnections)
	waitUntil(t, ctx, readyTimeout, "gripd to proxy GET / to ws-chat (its chat page) and its control API to answer GET / with 200", func() (bool, string) {
		if g.exited() {
			t.Fatalf("gripd exited during start-up: %v\n%s", g.waitErr, g.out.String())
		}
		cs, _, _, cerr := h.get(controlURL + "/")
		ps, _, pb, perr := h.get(proxyURL + "/")
		state := fmt.Sprintf("control GET /: status %d err %v; client GET /: status %d err %v", cs, cerr, ps, perr)
		return cerr == nil && cs == http.StatusOK && perr == nil && ps == http.StatusOK && strings.Contains(pb, "/chat/lobby"), state
	})

	dial := func(name string) *websocket.Conn {
		t.Helper()
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		defer dcancel()
		c, resp, err := websocket.Dial(dctx, wsURL+"/chat/lobby", nil)
		if err != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Fatalf("client %s: WebSocket handshake with gripd at %s/chat/lobby: %v (HTTP status %d)", name, wsURL, err, status)
		}
		t.Cleanup(func() { c.CloseNow() })
		return c
	}
	read := func(name string, c *websocket.Conn, want string) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		typ, data, err := c.Read(rctx)
		if err != nil {
			t.Fatalf("client %s: waiting for %q: %v", name, want, err)
		}
		if typ != websocket.MessageText || string(data) != want {
			t.Fatalf("client %s: got a %v message %q, want the text message %q", name, typ, data, want)
		}
	}
	send := func(name string, c *websocket.Conn, msg string) {
		t.Helper()
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		defer wcancel()
		if err := c.Write(wctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("client %s: sending %q: %v", name, msg, err)
		}
	}

	// The welcome comes in the OPEN reply after the subscribe control
	// message, which gripd applies first: once a client has it, it is in
	// the room. gripd strips the "m:" prefix.
	a := dial("a")
	read("a", a, "welcome to lobby")
	b := dial("b")
	read("b", b, "welcome to lobby")

	msg := "hello from a \u2713"
	send("a", a, msg)
	read("a", a, msg) // the sender gets its own message too
	read("b", b, msg)

	send("b", b, "hi from b")
	read("a", a, "hi from b")
	read("b", b, "hi from b")

	// A client's close is relayed to ws-chat, which echoes it: a clean
	// close handshake with the client's code.
	if err := a.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Errorf("client a: clean close: %v", err)
	}
	send("b", b, "still here")
	read("b", b, "still here")

	// A room name ws-chat refuses (404 on OPEN) fails the handshake with
	// that status.
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	c, resp, err := websocket.Dial(dctx, wsURL+"/chat/no%20spaces", nil)
	if err == nil {
		c.CloseNow()
		t.Errorf("handshake for /chat/no%%20spaces succeeded; ws-chat refuses that room, so gripd should refuse the client")
	} else if resp == nil || resp.StatusCode != http.StatusNotFound {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Errorf("handshake for /chat/no%%20spaces: status %d (%v), want ws-chat's 404", status, err)
	}
}
