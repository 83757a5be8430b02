package integration

// A flood of connections to the control API and the admin listener of a
// gripd with few file descriptors (256) leaves its clients served: each
// listener has its own connection cap, within its share of the open-file
// limit, so no listener can use up the descriptors another needs (before
// the caps, such a flood made every accept fail with "too many open
// files"). Bounded: it finishes by itself in a few seconds.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gripd/gripd/internal/testutil"
)

func TestListenerFloodDoesNotStarveClients(t *testing.T) {
	gripd := wsChatGripd(t)
	backend := startFleetBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	listen, control, admin := testutil.FreePort(t), testutil.FreePort(t), testutil.FreePort(t)
	addr := func(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
	g := startFleetProc(t, "gripd (256 open files)", "/bin/sh", "-c", `ulimit -n 256 && exec "$0" "$@"`, gripd,
		"--listen", addr(listen), "--control-listen", addr(control), "--admin-listen", addr(admin),
		"--route", "* "+backend)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	get := func(u string) (int, string) {
		resp, err := client.Get(u)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	plain := "http://" + addr(listen) + "/plain"
	waitUntil(t, ctx, readyTimeout, "gripd to proxy GET /plain", func() (bool, string) {
		if g.exited() {
			t.Fatalf("gripd exited: %v\n%s", g.waitErr, g.out.String())
		}
		code, body := get(plain)
		return code == 200, fmt.Sprintf("%d %q", code, body)
	})

	// The flood: far more idle connections than there are descriptors.
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for _, l := range []struct {
		port, n int
	}{{control, 300}, {admin, 100}} {
		for range l.n {
			c, err := net.DialTimeout("tcp", addr(l.port), time.Second)
			if err != nil {
				continue // refused or backlog full: the flood is on
			}
			flood = append(flood, c)
		}
	}

	// Clients are still served. (The control API and the admin listener
	// answer 503 over their caps, or, while the flood is being refused,
	// close at once.)
	for i := range 20 {
		if code, body := get(plain); code != 200 || body != "ok\n" {
			t.Fatalf("client request %d during the flood: %d %q", i, code, body)
		}
	}
	if out := g.out.String(); strings.Contains(out, "too many open files") {
		t.Fatalf("gripd ran out of file descriptors:\n%s", tail(out, 4<<10))
	}
}
