package proxy

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/gripd/gripd/grip"
)

// This file relays a client WebSocket to a WebSocket backend (a route
// without over_http). gripd offers the backend the GRIP extension; when
// the backend accepts it, its "c:" messages control the connection's
// subscriptions and published ws-message items reach the client, exactly
// as over WebSocket-over-HTTP.

// servePassthroughWebSocket connects the client to a WebSocket backend.
func (s *Server) servePassthroughWebSocket(w *responseLog, r *http.Request, route *Route, start time.Time) {
	ws := s.newWSSession(w, r, route, start)
	st, cancel := ws.st, ws.cancel
	dialStart := time.Now()
	backend, resp, err := ws.dialBackend(r)
	observeBackend(ws.ctx, s.cfg.Observer, route.ID, dialStart, resp, err)
	if err != nil {
		cancel()
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, wsMaxRejectBody))
			resp.Body.Close()
			relayRejection(w, &wsResponse{StatusCode: resp.StatusCode, Header: resp.Header, body: body})
		} else {
			st.log.Error().Str("route", route.ID).Err(err).Msg("WebSocket backend unreachable")
			writeText(w, http.StatusBadGateway, "Error while proxying to origin.\n")
		}
		s.logRequest(r, st, start)
		return
	}
	ws.backend = backend
	backend.SetReadLimit(wsMaxReplyBody)
	h := w.Header()
	for k, vs := range resp.Header {
		if wsKeepFromReply(k) {
			h[k] = vs
		}
	}
	opts := &websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled}
	if p := backend.Subprotocol(); p != "" {
		opts.Subprotocols = []string{p}
	}
	conn, err := websocket.Accept(w, r, opts)
	if err != nil {
		cancel()
		backend.CloseNow()
		st.log.Warn().Str("route", route.ID).Err(err).Msg("WebSocket handshake with the client failed")
		return
	}
	ws.accepted(conn, r)
	ws.sub.SetNotify(ws.wakeDeliver)
	go ws.readClient()
	go ws.readBackend()
	ws.wakeDeliver()
}

// dialBackend opens the backend WebSocket, trying the route's backends in
// order, and notes whether the backend accepted the GRIP extension.
func (ws *wsSession) dialBackend(r *http.Request) (*websocket.Conn, *http.Response, error) {
	header := wsBaseHeader(r)
	for k := range header {
		if strings.HasPrefix(k, "Sec-Websocket-") {
			delete(header, k)
		}
	}
	header.Set("Sec-WebSocket-Extensions", "grip")
	setRequestID(header, ws.st.requestID)
	if tok, err := ws.srv.signer(ws.route).Token(time.Now()); err == nil && tok != "" {
		header.Set("Grip-Sig", tok)
	}
	header.Set("Grip-Feature", grip.Feature)
	var protocols []string
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				protocols = append(protocols, p)
			}
		}
	}
	var lastErr error
	for _, b := range ws.route.Backends {
		u := url.URL{Scheme: "ws", Host: b.URL.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
		if b.URL.Scheme == "https" {
			u.Scheme = "wss"
		}
		if ws.route.StripChars > 0 || ws.route.ReplacePrefix != nil {
			p := ws.route.RewritePath(r.URL.EscapedPath())
			u.RawPath, u.Path = p, unescapePath(p)
		}
		host := ws.host
		if b.HostHeader != "" {
			host = b.HostHeader
		}
		gripExt := &gripExtensionTransport{base: queuedTransport{ws.srv.fo.clients.Load().forBackend(&b), ws.st.queueTimeout()}}
		conn, resp, err := websocket.Dial(ws.ctx, u.String(), &websocket.DialOptions{
			HTTPClient:      &http.Client{Transport: gripExt, Timeout: ws.srv.backendTimeout()},
			HTTPHeader:      header,
			Host:            host,
			Subprotocols:    protocols,
			CompressionMode: websocket.CompressionDisabled,
		})
		if err == nil {
			ws.applyReplyHeaders(http.Header{"Sec-Websocket-Extensions": gripExt.extensions})
			return conn, resp, nil
		}
		lastErr = err
		if resp != nil || !isDialError(err) {
			return nil, resp, err
		}
	}
	return nil, nil, errors.Join(errNoBackend, lastErr)
}

// gripExtensionTransport takes the GRIP extension out of the backend's
// handshake reply (the WebSocket library refuses extensions it does not
// implement itself) and keeps it for the session to read.
type gripExtensionTransport struct {
	base       http.RoundTripper
	mu         sync.Mutex
	extensions []string
}

func (g *gripExtensionTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := g.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.extensions = resp.Header.Values("Sec-WebSocket-Extensions")
	g.mu.Unlock()
	resp.Header.Del("Sec-WebSocket-Extensions")
	return resp, nil
}

// readBackend relays the backend's messages to the client (control
// messages act on the session) until either side closes.
func (ws *wsSession) readBackend() {
	for {
		typ, data, err := ws.backend.Read(ws.ctx)
		if err != nil {
			if ws.ended.Load() {
				return
			}
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				ws.conn.Close(ce.Code, ce.Reason)
				ws.finish("backend closed")
			} else {
				ws.conn.Close(websocket.StatusInternalError, "backend error")
				ws.finish("backend error")
			}
			return
		}
		t := grip.WSText
		if typ == websocket.MessageBinary {
			t = grip.WSBinary
		}
		if end := ws.backendMessage(grip.WSEvent{Type: t, Content: data}); end != "" {
			ws.finish(end)
			return
		}
	}
}

// forwardToBackend sends a client event straight to a WebSocket backend.
func (ws *wsSession) forwardToBackend(e grip.WSEvent) {
	var err error
	switch e.Type {
	case grip.WSText:
		err = ws.backend.Write(ws.ctx, websocket.MessageText, e.Content)
	case grip.WSBinary:
		err = ws.backend.Write(ws.ctx, websocket.MessageBinary, e.Content)
	case grip.WSClose:
		code, reason, _ := grip.ParseWSClose(e.Content)
		if code == 0 {
			code = int(websocket.StatusNormalClosure)
		}
		ws.backend.Close(websocket.StatusCode(code), reason)
		ws.finish("closed")
	case grip.WSDisconnect:
		ws.finish("client gone")
	}
	if err != nil && !ws.ended.Load() {
		ws.conn.Close(websocket.StatusInternalError, "backend error")
		ws.finish("backend error")
	}
}
