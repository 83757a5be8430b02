package main

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/config"
	"github.com/gripd/gripd/proxy"
	"github.com/gripd/gripd/publish"
)

// shutdownGrace is how long, after the drain window, gripd still waits
// for what the drain does not end itself (plain proxied responses still
// streaming, publishes under way) before it closes them.
const shutdownGrace = 10 * time.Second

// daemon is a running gripd: the hub, the proxy, the control API, the
// admin handler and their listeners. startDaemon builds and starts one;
// run serves until told to stop and then drains it.
type daemon struct {
	log    zerolog.Logger
	hub    *handoff.Hub
	px     *proxy.Server
	api    *publish.ControlAPI
	adm    *admin
	reload *reloader
	// closers run last, in order: the NATS connection, then the embedded
	// server.
	closers []func()

	clientSrv, controlSrv, adminSrv *http.Server
	clientLn, controlLn, adminLn    net.Listener // adminLn nil when off
	errc                            chan error   // a listener that failed
	// watchEvery is how often the config file is checked for changes
	// (reload.watch). One second; tests make it shorter.
	watchEvery time.Duration
	// loadedStamp is the config file as it was when gripd started: the
	// watcher reloads when it differs.
	loadedStamp fileStamp
}

// startDaemon builds gripd from cfg and starts its listeners. src is
// where reloads read the configuration from again.
func startDaemon(cfg *config.Config, src *config.Source, reusePort bool, log zerolog.Logger) (d *daemon, err error) {
	d = &daemon{log: log, errc: make(chan error, 3), watchEvery: time.Second}
	if src.Path != "" {
		d.loadedStamp = stampFile(src.Path)
	}
	table, err := proxy.NewTable(cfg.Routes)
	if err != nil {
		return d, err
	}
	defer func() {
		if err != nil {
			d.closeAll()
		}
	}()
	d.hub = handoff.NewHub(handoff.Config{QueueSize: cfg.SubscriberQueue})
	var broker publish.Broker = &publish.LocalBroker{Hub: d.hub}
	var natsUp natsLink // stays nil without NATS
	// history stays nil unless history is on (history.go).
	var history proxy.History
	natsCfg := cfg.NATS.Client()
	if cfg.NATS.Embedded.Listen != "" {
		storeDir, cleanup, err := historyStore(cfg.NATS.Embedded, cfg.History)
		if err != nil {
			return d, err
		}
		ns, url, err := startEmbeddedNATS(cfg.NATS.Embedded, cfg.History.Enabled, storeDir)
		if err != nil {
			cleanup()
			return d, err
		}
		d.closers = append(d.closers, ns.Shutdown, cleanup)
		log.Info().Str("listen", string(cfg.NATS.Embedded.Listen)).Str("cluster", string(cfg.NATS.Embedded.Cluster.Listen)).Msg("embedded NATS server started")
		if natsCfg.URL == "" {
			natsCfg.URL = url
		}
	}
	if natsCfg.URL != "" {
		nb, err := publish.NewNATSBroker(natsCfg, d.hub, log)
		if err != nil {
			return d, err
		}
		// Before the embedded server's shutdown: the connection goes first.
		d.closers = append([]func(){nb.Close}, d.closers...)
		broker = nb
		natsUp = nb
		log.Info().Str("nats", publish.RedactURL(natsCfg.URL)).Bool("connected", nb.Connected()).Msg("publishes go through NATS")
		if history, err = enableHistory(cfg.History, nb, log); err != nil {
			return d, err
		}
	}
	if cfg.History.Enabled && history == nil {
		return d, historyNeedsNATS()
	}
	d.api = publish.NewControlAPI(publish.ControlConfig{Auth: cfg.Control.Auth.Publish()}, broker, log)
	met := newMetrics(d.hub, d.api, natsUp)
	if d.px, err = proxy.NewServer(proxy.Config{
		Table:              table,
		Hub:                d.hub,
		SigIss:             cfg.Signing.Iss,
		SigKey:             cfg.Signing.Key,
		BackendTimeout:     cfg.BackendTimeout.Std(),
		DialTimeout:        cfg.BackendDialTimeout.Std(),
		MaxConnsPerBackend: cfg.BackendMaxConns,
		Limits:             cfg.Limits.Proxy(),
		Log:                log,
		Observer:           met.proxy,
		History:            history,
	}); err != nil {
		return d, err
	}
	d.adm = newAdmin(d.hub, met, natsUp)
	d.reload = &reloader{src: src, log: log, running: cfg, target: liveTarget{d}, onResult: met.ConfigReloaded}

	var lc net.ListenConfig
	if reusePort {
		lc.Control = setReusePort
	}
	if d.clientLn, err = lc.Listen(context.Background(), "tcp", string(cfg.Listen)); err != nil {
		return d, fmt.Errorf("client listener: %w", err)
	}
	clientLimits := cfg.Limits.Listener(openFileLimit())
	connLimit := proxy.NewClientListener(d.clientLn, clientLimits, log)
	d.clientLn = connLimit
	met.watchClientListener(connLimit, clientLimits.MaxConns)
	if d.controlLn, err = net.Listen("tcp", string(cfg.Control.Listen)); err != nil {
		return d, fmt.Errorf("control listener: %w", err)
	}
	if !cfg.Admin.Listen.Off() {
		if d.adminLn, err = net.Listen("tcp", string(cfg.Admin.Listen)); err != nil {
			return d, fmt.Errorf("admin listener: %w", err)
		}
	}
	errLog := stdlog.New(zerologWriter{log}, "", 0)
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: errLog}
	}
	d.clientSrv, d.controlSrv, d.adminSrv = proxy.NewClientServer(d.px, clientLimits, errLog), newServer(d.api), newServer(d.adm)
	go func() { d.errc <- d.clientSrv.Serve(d.clientLn) }()
	go func() { d.errc <- d.controlSrv.Serve(d.controlLn) }()
	adminAddr := "off"
	if d.adminLn != nil {
		adminAddr = d.adminLn.Addr().String()
		go func() { d.errc <- d.adminSrv.Serve(d.adminLn) }()
	}
	log.Info().Str("listen", d.clientLn.Addr().String()).Str("control", d.controlLn.Addr().String()).Str("admin", adminAddr).
		Int("routes", len(cfg.Routes)).Int("max_client_conns", clientLimits.MaxConns).Str("version", version()).Msg("gripd ready")
	return d, nil
}

// liveTarget applies a reload's live settings to the daemon's parts.
// Held connections are not touched: they keep the route, queue and
// signer they were made with.
type liveTarget struct{ d *daemon }

func (t liveTarget) SetTable(table *proxy.Table)       { t.d.px.SetTable(table) }
func (t liveTarget) SetSigning(iss string, key []byte) { t.d.px.SetSigning(iss, key) }
func (t liveTarget) SetBackendLimits(timeout time.Duration, maxConns int) {
	t.d.px.SetBackendLimits(timeout, maxConns)
}
func (t liveTarget) SetLimits(l proxy.Limits)         { t.d.px.SetLimits(l) }
func (t liveTarget) SetQueueSize(n int)               { t.d.hub.SetQueueSize(n) }
func (t liveTarget) SetControlAuth(auth publish.Auth) { t.d.api.SetAuth(auth) }

// run serves until a stop signal (SIGTERM, SIGINT) arrives on signals or
// ctx is done, reloading on SIGHUP and, when configured, on changes to
// the config file. It then drains: see drain.
func (d *daemon) run(ctx context.Context, signals <-chan os.Signal) error {
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		if path := d.reload.src.Path; path != "" && d.reload.current().Reload.Watch {
			watchFile(watchCtx, path, d.loadedStamp, d.watchEvery, func() { _ = d.reload.Reload("file changed") })
		}
	}()

	var serveErr error
wait:
	for {
		select {
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				_ = d.reload.Reload("SIGHUP")
				continue
			}
			d.log.Info().Str("signal", sig.String()).Msg("stop requested")
			break wait
		case <-ctx.Done():
			break wait
		case serveErr = <-d.errc:
			d.log.Error().Err(serveErr).Msg("a listener failed")
			break wait
		}
	}
	stopWatch()
	<-watchDone // no reload once the drain has begun

	hurry, hurryNow := context.WithCancel(context.Background())
	defer hurryNow()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		d.drain(hurry)
	}()
	for {
		select {
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				continue
			}
			d.log.Warn().Str("signal", sig.String()).Msg("second stop signal: ending every connection now")
			hurryNow()
		case <-drained:
			if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
				return serveErr
			}
			return nil
		}
	}
}

// drain is the lame-duck exit: /readyz fails at once so load balancers
// look elsewhere; the client listener stops accepting; held connections
// end spread over the drain window (streams end cleanly, long-polls get
// their timeout response, WebSockets close 1001 and their backends get a
// DISCONNECT); publishes keep flowing to the connections still held, and
// those under way complete; then everything closes. Cancelling hurry
// drops the pace and closes everything still open.
func (d *daemon) drain(hurry context.Context) {
	window := d.reload.current().Drain.Duration.Std()
	start := time.Now()
	held := d.hub.Stats()
	d.log.Info().Str("window", window.String()).Int64("held", held.Subscribers).Msg("draining: held connections end spread over the window")
	d.adm.Drain()

	deadline, cancel := context.WithTimeout(hurry, window+shutdownGrace)
	defer cancel()
	// Shutdown stops accepting at once, closes idle keep-alive connections
	// and waits for requests under way, long-polls among them; those end
	// as the hub drains them.
	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		if err := d.clientSrv.Shutdown(deadline); err != nil {
			d.clientSrv.Close()
		}
	}()

	d.hub.Drain(hurry, window)
	// Parked streams and WebSockets have left net/http: wait until they
	// have said goodbye (a last chunk, close 1001, a DISCONNECT).
	for d.hub.Stats().Subscribers > 0 && deadline.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	<-clientDone
	if err := d.controlSrv.Shutdown(deadline); err != nil {
		d.controlSrv.Close()
	}
	d.hub.Close() // stops the sequencer's timers; nothing is held any more
	d.log.Info().Str("took", time.Since(start).Round(time.Millisecond).String()).Int64("left", d.hub.Stats().Subscribers).Msg("drained")
	d.closeAll()
}

// closeAll closes whatever is still open, the admin listener last so
// probes see the drain until the end.
func (d *daemon) closeAll() {
	for _, srv := range []*http.Server{d.clientSrv, d.controlSrv, d.adminSrv} {
		if srv != nil {
			srv.Close()
		}
	}
	for _, ln := range []net.Listener{d.clientLn, d.controlLn, d.adminLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if d.adm != nil {
		d.adm.Close() // the status page's sampler
	}
	if d.px != nil {
		d.px.CloseIdleConnections()
	}
	for _, c := range d.closers {
		c()
	}
	d.closers = nil
}
