package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
)

// This file is a stream's next link (Grip-Link: <url>; rel=next;
// timeout=N), as Pushpin follows it: gripd GETs the link with a Grip-Last
// header for each channel that has a prev-id, appends the body to the
// stream, and applies the GRIP headers of the answer: a stream hold
// replaces the stream's channels, prev-ids, filters, meta, keep-alive and
// link; no hold with a link is followed at once; no hold and no link ends
// the stream. The link is fetched when the stream falls out of step (its
// prev-id is not its channel's last id as it begins, or an item breaks
// its chain), on a hint, on /recover, and every timeout unless every
// channel had traffic meanwhile.
//
// Where a link goes: a relative link is in the backend's own view. It
// resolves against the URL of the backend request (the scheme and host of
// the route's backend, the path as forwarded, after any rewrite) and is
// fetched through the same route that served the request: its backends
// with failover, its headers, Grip-Sig and Grip-Last, the path not
// rewritten again. The client's Host header never takes part: neither in
// resolving a relative link nor in picking a route for it, so a client
// cannot point gripd at a host of its choosing. An absolute link is the
// backend's choice, but backends build links from request paths, and
// "//host/x" is absolute: so a host and path of the route table go to that
// route's backends, rewritten and signed as a client request would be; a
// host listed in Config.LinkHosts is fetched as it is, unsigned; any other
// is refused, logged and counted, and the stream ends (Pushpin fetches
// any absolute link). A relative link in the answer to an absolute one
// resolves against that absolute URL and is treated as absolute. An
// absolute link's path has its dot segments resolved like a client's
// (normalizePath) before it picks a route.
//
// Links followed in a row because the answers held nothing (no hold, only
// another link) are paced per stream, linkBurst at once and then one per
// limits.link_interval, and capped at limits.max_links_without_hold: a
// backend that loops, or a client that makes it loop, costs the backend
// ten requests a second at most, and not for ever.
//
// Fetches are never shared between streams, not even identical ones:
// Pushpin shares them, and mixes up streams with different Grip-Last
// (its issue #47692).

// linkRetries is how often a failed fetch is tried again, before any of
// its body reached the client (Pushpin: 1, 2, 4, 8, 16 s).
const linkRetries = 5

// linkBurst is how many links without a hold a stream follows at once
// before limits.link_interval paces it.
const linkBurst = 10

// errLinkRefused is the error of an absolute next link to a host neither
// in the route table nor in Config.LinkHosts.
var errLinkRefused = errors.New("host is neither in the route table nor in links.allow_hosts: refused")

// Ends of a linked stream besides handoff's.
const (
	endLinkFailed handoff.StreamEnd = "link failed" // the link could not be fetched (retries spent) or its answer was unusable
	endNoLink     handoff.StreamEnd = "no link"     // prev-ids need a next link to recover through, and there is none
)

// linkError says why a fetch failed and whether trying again may help.
type linkError struct {
	err    error
	retry  bool // nothing was written and the backend may answer next time
	client bool // writing to the client failed
}

func (e *linkError) Error() string { return e.err.Error() }
func (e *linkError) Unwrap() error { return e.err }

// linkedStream is a held stream with a next link (or one that needs one:
// a channel with a prev-id).
type linkedStream struct {
	srv  *Server
	st   *requestState
	ctx  context.Context
	sw   *streamWriter
	sub  *handoff.Subscriber
	link *url.URL // nil: none (then hints and recoveries have nothing to fetch)
	// sameRoute: link is a relative link in the backend's view, fetched
	// through st.route as it is; otherwise an absolute one (getLink).
	sameRoute bool
	// host is the Host header of the backend request, sent again with a
	// sameRoute fetch (a backend's own host_header still replaces it).
	host string
	poll time.Duration
	ka   *grip.KeepAlive
}

// setLink takes inst's next link, resolved against base. A relative link
// stays on the same route when base is a same-route URL (the backend
// request's, or a relative link's before it); an absolute one never does.
func (ls *linkedStream) setLink(inst *grip.Instruction, base *url.URL, baseSameRoute bool) error {
	ls.link, ls.poll, ls.sameRoute = nil, 0, false
	l := inst.NextLink()
	if l == nil {
		return nil
	}
	ref, err := url.Parse(l.URL)
	if err != nil {
		return fmt.Errorf("link %q: %w", l.URL, err)
	}
	u, err := grip.ResolveLink(base, l.URL)
	if err != nil {
		return err
	}
	relative := ref.Scheme == "" && ref.Host == ""
	ls.link, ls.poll, ls.sameRoute = u, l.Timeout, relative && baseSameRoute
	return nil
}

// followLinks holds a stream that has (or needs) a next link until it
// ends, fetching the link whenever it is due.
func (s *Server) followLinks(st *requestState, r *http.Request, sw *streamWriter, sub *handoff.Subscriber, inst *grip.Instruction) (handoff.StreamEnd, error) {
	ls := &linkedStream{srv: s, st: st, ctx: r.Context(), sw: sw, sub: sub, ka: inst.KeepAlive, host: r.Host}
	if err := ls.setLink(inst, backendURL(st, r), true); err != nil {
		return endLinkFailed, err
	}
	if ls.link == nil {
		return endNoLink, errors.New("a channel has a prev-id but there is no next link")
	}
	// A response without a hold but with a link is followed at once; a
	// stream that is out of step as it begins recovers at once.
	reason := handoff.StreamEnd("")
	if sub.OutOfStep() {
		reason = handoff.EndOutOfStep
	}
	due := reason != "" || inst.Hold == grip.HoldNone
	// chained: the next fetch follows an answer that held nothing;
	// inARow counts such fetches since the last hold.
	chained, inARow := inst.Hold == grip.HoldNone, 0
	pacer := rate.NewLimiter(rate.Every(st.limits.LinkInterval), linkBurst)
	for {
		if !due {
			end, err := handoff.HoldStreamWith(ls.ctx, sub, sw, handoff.StreamConfig{KeepAlive: ls.ka, LinkTimeout: ls.poll})
			if end != handoff.EndLink && end != handoff.EndHint && end != handoff.EndOutOfStep {
				return end, err
			}
			reason = end
		}
		if reason == handoff.EndOutOfStep {
			if end, caught, err := ls.catchUp(); caught {
				if end != "" {
					return end, err
				}
				due, reason = false, ""
				continue // history brought it in step: no fetch
			}
		}
		if ls.link == nil {
			due, reason = false, ""
			continue // nothing to fetch
		}
		if reason == handoff.EndLink || reason == handoff.EndOutOfStep {
			if err := s.pace(ls.ctx); err != nil {
				return handoff.EndClient, nil
			}
		}
		if chained {
			if inARow++; inARow > st.limits.MaxLinksWithoutHold {
				s.cfg.Observer.NextLink(st.route.ID, LinkCapped)
				return endLinkFailed, fmt.Errorf("%d next links in a row without a hold (limits.max_links_without_hold)", inARow-1)
			}
			if err := pacer.Wait(ls.ctx); err != nil {
				return handoff.EndClient, nil
			}
		}
		inst, err := ls.fetch()
		if err != nil {
			var le *linkError
			if errors.As(err, &le) && le.client {
				return handoff.EndWrite, err
			}
			if ls.ctx.Err() != nil {
				return handoff.EndClient, nil
			}
			return endLinkFailed, err
		}
		base, baseSameRoute := ls.link, ls.sameRoute
		ls.ka = inst.KeepAlive
		if err := ls.setLink(inst, base, baseSameRoute); err != nil {
			return endLinkFailed, err
		}
		switch {
		case inst.Hold == grip.HoldStream:
			s.cfg.Hub.UpdateHold(sub, inst.Channels, inst.Meta)
			if ls.link == nil && channelsWithPrevID(inst.Channels) {
				return endNoLink, errors.New("a channel has a prev-id but there is no next link")
			}
			due, chained, inARow = false, false, 0
		case ls.link == nil:
			return handoff.EndClosed, nil // no hold, no link: the stream is complete
		default:
			due, chained = true, true // no hold but a link: go on, paced
		}
		reason = ""
	}
}

// catchUp writes what the stream missed from history (history.go).
// caught is false when history cannot tell: the link is fetched instead.
// end is set when the stream ended meanwhile (a published close, a
// failed write).
func (ls *linkedStream) catchUp() (end handoff.StreamEnd, caught bool, err error) {
	wrote := false
	caught = ls.srv.catchUp(ls.ctx, ls.st, ls.sub, func(it *grip.Item, content []byte) bool {
		f := it.HTTPStream
		switch {
		case f == nil:
			return true
		case f.Action == grip.ActionClose:
			end = handoff.EndClosed
			return false
		}
		if _, err = ls.sw.Write(content); err != nil {
			end = handoff.EndWrite
			return false
		}
		wrote = true
		return true
	})
	if wrote && end == "" {
		if err = ls.sw.Flush(); err != nil {
			end = handoff.EndWrite
		}
	}
	return end, caught, err
}

// backendURL is the URL of the backend request r (as forwarded: path
// rewritten, scheme and host of the backend that answered), which
// relative links resolve against. It never uses the client's Host.
func backendURL(st *requestState, r *http.Request) *url.URL {
	u := *r.URL
	if u.Host == "" {
		b := st.route.Backends[0].URL
		u.Scheme, u.Host = b.Scheme, b.Host
	}
	u.User = nil
	return &u
}

// fetch gets the link, retrying with backoff as long as nothing of the
// answer reached the client, and appends its body to the stream.
func (ls *linkedStream) fetch() (*grip.Instruction, error) {
	delay := ls.srv.cfg.LinkRetryDelay
	for attempt := 0; ; attempt++ {
		inst, wrote, err := ls.fetchOnce()
		if err == nil {
			return inst, nil
		}
		var le *linkError
		if wrote || attempt >= linkRetries || !errors.As(err, &le) || !le.retry || ls.ctx.Err() != nil {
			return nil, err
		}
		ls.st.log.Debug().Str("route", ls.st.route.ID).Str("link", ls.link.Redacted()).Err(err).Dur("retry_in", delay).Msg("next link failed; trying again")
		t := time.NewTimer(delay + rand.N(delay))
		select {
		case <-t.C:
		case <-ls.ctx.Done():
			t.Stop()
			return nil, ls.ctx.Err()
		}
		delay *= 2
	}
}

// fetchOnce makes one request for the link. wrote says whether any of
// its body reached the client (then it is never tried again).
func (ls *linkedStream) fetchOnce() (inst *grip.Instruction, wrote bool, err error) {
	resp, err := ls.srv.getLink(ls.ctx, ls.st, ls.link, ls.sameRoute, ls.host, ls.sub.LastIDs())
	if err != nil {
		return nil, false, &linkError{err: fmt.Errorf("next link %s: %w", ls.link.Redacted(), err), retry: !errors.Is(err, errLinkRefused)}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, false, &linkError{err: fmt.Errorf("next link %s answered %d", ls.link.Redacted(), resp.StatusCode), retry: true}
	}
	var body []byte
	if grip.IsInstruct(resp.Header) {
		if body, err = readLimited(resp.Body, ls.st.limits.MaxInstructBody); err != nil {
			return nil, false, &linkError{err: err, retry: true}
		}
	}
	inst, err = grip.ParseInstruction(resp.StatusCode, resp.Header, body)
	if err != nil {
		return nil, false, &linkError{err: fmt.Errorf("next link %s: %w", ls.link.Redacted(), err)}
	}
	if inst.Hold == grip.HoldResponse {
		return nil, false, &linkError{err: fmt.Errorf("next link %s answered with a response hold", ls.link.Redacted())}
	}
	var src io.Reader = resp.Body
	if body != nil {
		src = bytes.NewReader(inst.Response.Body)
	}
	if src, err = filterBody(inst, src, ls.st.limits.MaxInstructBody); err != nil {
		return nil, false, &linkError{err: fmt.Errorf("next link %s: %w", ls.link.Redacted(), err)}
	}
	cw := &countingWriter{w: ls.sw}
	if err := copyInitial(cw, src); err != nil {
		return nil, cw.n > 0, &linkError{err: err, retry: cw.err == nil, client: cw.err != nil}
	}
	if cw.n > 0 {
		if err := ls.sw.Flush(); err != nil {
			return nil, true, &linkError{err: err, client: true}
		}
	}
	return inst, cw.n > 0, nil
}

// getLink sends the GET for a next link. A relative link (sameRoute) goes
// to the backends of the route that served the request, its path as it
// is, signed, with host as Host header; the route table is not consulted.
// An absolute link to a host and path the route table knows goes to that
// route's backends, rewritten and signed as a client request would be; one
// to a host of Config.LinkHosts is fetched as it is, unsigned; any other
// is refused (errLinkRefused).
func (s *Server) getLink(ctx context.Context, st *requestState, u *url.URL, sameRoute bool, host string, lastIDs map[string]string) (*http.Response, error) {
	if !sameRoute {
		norm, ok := normalizePath(u.EscapedPath())
		if !ok {
			s.cfg.Observer.NextLink(st.route.ID, LinkRefused)
			return nil, errors.New("ambiguous path: refused")
		}
		nu := *u
		nu.Path, nu.RawPath = unescapePath(norm), norm
		u = &nu
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Host = u.Host
	setRequestID(req.Header, st.requestID)
	addGripLast(req.Header, lastIDs)
	route := st.route
	if sameRoute {
		req.Host = host
	} else {
		var ok bool
		if route, ok = s.table.Load().Match(u.Hostname(), u.EscapedPath()); !ok {
			if !s.linkHostAllowed(u) {
				s.cfg.Observer.NextLink(st.route.ID, LinkRefused)
				return nil, errLinkRefused
			}
			s.cfg.Observer.NextLink(st.route.ID, LinkFollowed)
			return s.fo.clients.Load().secure.RoundTrip(req)
		}
	}
	s.cfg.Observer.NextLink(st.route.ID, LinkFollowed)
	if !sameRoute && (route.StripChars > 0 || route.ReplacePrefix != nil) {
		path := route.RewritePath(u.EscapedPath())
		req.URL.RawPath, req.URL.Path = path, unescapePath(path)
	}
	for k, vs := range route.SetHeaders {
		if len(vs) == 0 || vs[0] == "" {
			req.Header.Del(k)
		} else {
			req.Header[k] = vs
		}
	}
	if !route.NoGrip {
		if tok, err := s.signer(route).Token(time.Now()); err == nil && tok != "" {
			req.Header.Set("Grip-Sig", tok)
		}
		req.Header.Set("Grip-Feature", grip.Feature)
	}
	linkState := &requestState{route: route, log: st.log, requestID: st.requestID, start: time.Now(), limits: st.limits}
	return s.fo.RoundTrip(req.WithContext(context.WithValue(ctx, stateKey{}, linkState)))
}

// filterBody runs the response-body filters of inst's channels (build-id)
// over a stream hold's or a next link's body. Without them the body is
// left to stream through.
// limit is the request's limits.max_instruct_body.
func filterBody(inst *grip.Instruction, body io.Reader, limit int64) (io.Reader, error) {
	if !grip.WantsResponseFilter(inst.Channels) {
		return body, nil
	}
	all, err := readLimited(body, limit)
	if err != nil {
		return nil, err
	}
	fc := grip.FilterContext{SubMeta: inst.Meta, Channels: channelNames(inst.Channels), PrevIDs: prevIDsOf(inst.Channels)}
	out, err := grip.FilterResponse(inst.Channels, fc, all)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(out), nil
}

// countingWriter counts what reaches w and keeps w's error, so a failed
// copy can tell the client's fault from the backend's.
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// linkHostAllowed says whether u's host is one of Config.LinkHosts: an
// entry "host" allows any port, "host:port" that port only.
func (s *Server) linkHostAllowed(u *url.URL) bool {
	host, hostPort := strings.ToLower(u.Hostname()), strings.ToLower(u.Host)
	for _, h := range s.cfg.LinkHosts {
		if h = strings.ToLower(h); h == host || h == hostPort {
			return true
		}
	}
	return false
}
