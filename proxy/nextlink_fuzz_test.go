package proxy

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// linkVerdicts is an Observer that keeps the last next-link verdict.
type linkVerdicts struct {
	nopObserver
	last string
}

func (v *linkVerdicts) NextLink(_, result string) { v.last = result }

// FuzzNextLink checks where a stream's next link may lead, whatever the
// backend (or a client through it) puts in Grip-Link. The link is
// resolved as a stream resolves it (setLink) and sent as a stream sends it
// (getLink), on a context cancelled beforehand so nothing leaves the
// process. It must not panic, and a link gripd follows stays where it
// belongs:
//   - a relative link from the backend request keeps the backend's host;
//   - any other followed link has a host of the route table or of
//     links.allow_hosts, and a link to the route limited to /public/ has a
//     normalized path under /public/.
//
// The seed corpus is in testdata/fuzz/FuzzNextLink.
func FuzzNextLink(f *testing.F) {
	backend := &url.URL{Scheme: "http", Host: "127.0.0.1:1"}
	table, err := NewTable([]Route{
		{ID: "api", Host: "api.example", Backends: []Backend{{URL: backend}}},
		{ID: "files", Host: "files.local", PathPrefix: "/public/", Backends: []Backend{{URL: backend}}},
	})
	if err != nil {
		f.Fatal(err)
	}
	hub := handoff.NewHub(handoff.Config{})
	f.Cleanup(hub.Close)
	verdicts := &linkVerdicts{}
	srv, err := NewServer(Config{Table: table, Hub: hub, Log: zerolog.Nop(), Observer: verdicts,
		LinkHosts: []string{"static.example", "cdn.example:8080"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.CloseIdleConnections)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	routeHosts := map[string]bool{"api.example": true, "files.local": true}

	f.Fuzz(func(t *testing.T, link string, fromBackend bool) {
		// The base is the backend request (a relative link stays on its
		// route) or an absolute link fetched before (it does not).
		base := &url.URL{Scheme: "http", Host: "127.0.0.1:1", Path: "/public/feed", RawQuery: "from=1"}
		if !fromBackend {
			base = &url.URL{Scheme: "http", Host: "api.example", Path: "/feed/2"}
		}
		ls := &linkedStream{}
		inst := &grip.Instruction{Links: []grip.Link{{URL: link, Rel: grip.LinkNext}}}
		if err := ls.setLink(inst, base, fromBackend); err != nil {
			return
		}
		u := ls.link
		if u == nil {
			t.Fatalf("setLink(%q) gave no link and no error", link)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("setLink(%q) = %s: not an http(s) URL with a host", link, u)
		}
		sameRoute := ls.sameRoute
		st := &requestState{route: &table.routes[0], log: zerolog.Nop(), start: time.Now(), limits: &Limits{}}
		verdicts.last = ""
		resp, _ := srv.getLink(cancelled, st, cloneURL(u), sameRoute, "client.example", nil)
		if resp != nil {
			resp.Body.Close()
			t.Fatalf("link %q reached a backend on a cancelled context", link)
		}
		if verdicts.last != LinkFollowed {
			return
		}
		if sameRoute {
			if u.Host != base.Host {
				t.Fatalf("relative link %q from %s followed to host %q", link, base, u.Host)
			}
			return
		}
		host := tableHost(u.Hostname())
		allowed := strings.EqualFold(u.Hostname(), "static.example") || strings.EqualFold(u.Host, "cdn.example:8080")
		if !routeHosts[host] && !allowed {
			t.Fatalf("link %q followed to %q: neither a route's host nor an allowed one", link, u.Host)
		}
		if host == "files.local" && !allowed {
			norm, ok := normalizePath(u.EscapedPath())
			if !ok || !strings.HasPrefix(norm, "/public/") {
				t.Fatalf("link %q followed to files.local path %q (normalized %q, %v): outside /public/", link, u.EscapedPath(), norm, ok)
			}
		}
	})
}

// cloneURL copies u, so what getLink does to its copy leaves u as it was.
func cloneURL(u *url.URL) *url.URL {
	c := *u
	return &c
}
