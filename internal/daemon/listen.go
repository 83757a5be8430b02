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
	limits := cfg.Limits.Listener(openFileLimit())
	clientLn := proxy.NewClientListener(ln, limits, d.log)
	d.clientLn = clientLn
	d.metrics.WatchClientListener(clientLn, limits.MaxConns)
	if d.controlLn, err = net.Listen("tcp", string(cfg.Control.Listen)); err != nil {
		return fmt.Errorf("control listener: %w", err)
	}
	if !cfg.Admin.Listen.Off() {
		if d.adminLn, err = net.Listen("tcp", string(cfg.Admin.Listen)); err != nil {
			return fmt.Errorf("admin listener: %w", err)
		}
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
// with the client listener's default header and idle timeouts.
func newServer(h http.Handler, errLog *stdlog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: proxy.DefaultReadHeaderTimeout, IdleTimeout: proxy.DefaultIdleTimeout, ErrorLog: errLog}
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
