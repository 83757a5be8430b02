package daemon

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strings"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/proxy"
)

// Start opens the listeners (clients, control API, admin) and serves them,
// each from a goroutine the daemon owns. On error, Close releases what was
// opened.
func (d *Daemon) Start() error {
	cfg := d.reload.current()
	var lc net.ListenConfig
	if d.opts.ReusePort {
		lc.Control = setReusePort
	}
	ln, err := lc.Listen(context.Background(), "tcp", string(cfg.Listen))
	if err != nil {
		return fmt.Errorf("client listener: %w", err)
	}
	nofile := openFileLimit()
	limits := cfg.Limits.Listener(nofile)
	clientLn := proxy.NewClientListener(ln, limits, d.log)
	d.clientLn = clientLn
	d.metrics.WatchClientListener(clientLn, limits.MaxConns)
	// Each listener has its own connection cap, so that a flood on one
	// cannot use up the descriptors another needs (see
	// config.ListenerMaxConns).
	controlMax, adminMax := cfg.Control.ControlMaxConns(nofile), cfg.Admin.AdminMaxConns(nofile)
	if d.controlLn, err = net.Listen("tcp", string(cfg.Control.Listen)); err != nil {
		return fmt.Errorf("control listener: %w", err)
	}
	d.controlLn = proxy.NewConnLimitListener(d.controlLn, controlMax, d.log.With().Str("listener", "control").Logger())
	if !cfg.Admin.Listen.Off() {
		if d.adminLn, err = net.Listen("tcp", string(cfg.Admin.Listen)); err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
		d.adminLn = proxy.NewConnLimitListener(d.adminLn, adminMax, d.log.With().Str("listener", "admin").Logger())
	}
	if total := uint64(limits.MaxConns + controlMax + adminMax); nofile > 0 && total > nofile*3/4 {
		d.log.Warn().Uint64("open_file_limit", nofile).Int("max_client_conns", limits.MaxConns).Int("control_max_conns", controlMax).
			Int("admin_max_conns", adminMax).Msg("the listeners' connection caps add up to more than three quarters of the open-file limit: " +
			"when they are all full, backend connections and NATS may find no descriptor left; raise the limit (ulimit -n) or lower the caps")
	}
	errLog := stdlog.New(zerologWriter{d.log}, "", 0)
	d.client = proxy.NewClientServer(d.px, limits, errLog)
	d.control = newServer(d.api, errLog)
	d.serve(d.client, d.clientLn)
	d.serve(d.control, d.controlLn)
	adminAddr := "off"
	if d.adminLn != nil {
		d.adminSrv = newServer(d.admin, errLog)
		d.serve(d.adminSrv, d.adminLn)
		adminAddr = d.adminLn.Addr().String()
	}
	d.log.Info().Str("listen", d.clientLn.Addr().String()).Str("control", d.controlLn.Addr().String()).Str("admin", adminAddr).
		Int("routes", len(cfg.Routes)).Int("max_client_conns", limits.MaxConns).Str("version", d.opts.Version).Msg("gripd ready")
	return nil
}

// newServer is the http.Server of the control API and the admin listener,
// with the client listener's default header and idle timeouts. A request
// answered without its body read (a 401, a 404, a 405) closes its
// connection rather than have net/http read the body first (see
// closeUnread).
func newServer(h http.Handler, errLog *stdlog.Logger) *http.Server {
	return &http.Server{Handler: closeUnread(h), ReadHeaderTimeout: proxy.DefaultReadHeaderTimeout, IdleTimeout: proxy.DefaultIdleTimeout, ErrorLog: errLog}
}

// serve serves ln with srv until srv is shut down; any other end is an
// error that stops Run.
func (d *Daemon) serve(srv *http.Server, ln net.Listener) {
	d.goroutines.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
}

// zerologWriter turns the standard library's server error log into
// zerolog lines.
type zerologWriter struct{ log zerolog.Logger }

func (z zerologWriter) Write(p []byte) (int, error) {
	z.log.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
