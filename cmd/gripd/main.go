// Command gripd is a GRIP reverse proxy: it forwards client requests to
// backends and, when a backend answers with GRIP instructions, holds the
// client open as a long-poll or stream and pushes published content into
// it. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/proxy"
	"github.com/gripd/gripd/publish"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// routeFlags collects repeated --route values.
type routeFlags []string

func (r *routeFlags) String() string     { return strings.Join(*r, "; ") }
func (r *routeFlags) Set(v string) error { *r = append(*r, v); return nil }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Fprintln(stdout, "gripd", version())
			return 0
		case "publish":
			return runPublish(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("gripd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configPath    = fs.String("config", "", "routes.yaml to run from (see routes.yaml.example)")
		routes        routeFlags
		listen        = fs.String("listen", "", "address for clients (default :7999)")
		controlListen = fs.String("control-listen", "", "address for the control API (default 127.0.0.1:5561)")
		sigIss        = fs.String("sig-iss", "", "Grip-Sig issuer (default gripd)")
		sigKey        = fs.String("sig-key", "", "Grip-Sig key: a secret, base64:..., or file:PATH")
		logLevel      = fs.String("log-level", "info", "debug, info, warn or error")
		logFormat     = fs.String("log-format", "json", "json or console")
		check         = fs.Bool("check", false, "validate the configuration and exit")
		natsURL       = fs.String("nats", "", "NATS URL to share publishes with other instances (e.g. nats://127.0.0.1:4222)")
		natsEmbedded  = fs.String("nats-embedded", "", "start an embedded NATS server on this address (e.g. 127.0.0.1:4222)")
		reusePort     = fs.Bool("reuse-port", false, "listen for clients with SO_REUSEPORT, so several gripd processes can share the port (the kernel spreads connections)")
		adminListenF  = fs.String("admin-listen", "", "address for health checks and metrics (default 127.0.0.1:5563; off turns it off)")
	)
	fs.Var(&routes, "route", "a Pushpin route line, e.g. '* 127.0.0.1:8000' (repeatable; replaces the file's routes)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: gripd [flags]\n       gripd publish [flags] CHANNEL [CONTENT]\n       gripd version\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gripd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	log, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "gripd: %v\n", err)
		return 2
	}

	cfg := DefaultConfig()
	if *configPath != "" {
		if cfg, err = LoadConfig(*configPath); err != nil {
			fmt.Fprintf(stderr, "gripd: %v\n", err)
			return 1
		}
	}
	if len(routes) > 0 {
		cfg.Routes = nil
		for _, line := range routes {
			r, err := proxy.ParseRouteLine(line)
			if err != nil {
				fmt.Fprintf(stderr, "gripd: --route %q: %v\n", line, err)
				return 1
			}
			cfg.Routes = append(cfg.Routes, r)
		}
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *controlListen != "" {
		cfg.Control.Listen = *controlListen
	}
	if *sigIss != "" {
		cfg.Signing.Iss = *sigIss
	}
	if *sigKey != "" {
		if cfg.Signing.Key, err = proxy.ParseKey(*sigKey); err != nil {
			fmt.Fprintf(stderr, "gripd: --sig-key: %v\n", err)
			return 1
		}
	}
	if *natsURL != "" {
		cfg.NATS.Client.URL = *natsURL
	}
	if *natsEmbedded != "" {
		cfg.NATS.Embedded.Listen = *natsEmbedded
	}
	if *adminListenF != "" {
		if cfg.Admin.Listen, err = adminListen(*adminListenF); err != nil {
			fmt.Fprintf(stderr, "gripd: --admin-listen: %v\n", err)
			return 1
		}
	}
	if len(cfg.Routes) == 0 {
		fmt.Fprintln(stderr, "gripd: no routes: give --config FILE or --route 'SPEC' (e.g. --route '* 127.0.0.1:8000')")
		return 1
	}
	table, err := proxy.NewTable(cfg.Routes)
	if err != nil {
		fmt.Fprintf(stderr, "gripd: %v\n", err)
		return 1
	}
	if *check {
		fmt.Fprintf(stdout, "gripd: configuration ok (%d routes)\n", len(cfg.Routes))
		return 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, table, *reusePort, log); err != nil {
		log.Error().Err(err).Msg("gripd stopped")
		return 1
	}
	return 0
}

// serve runs the client and control listeners until ctx is done, then
// ends every held connection and shuts both down.
func serve(ctx context.Context, cfg *Config, table *proxy.Table, reusePort bool, log zerolog.Logger) error {
	hub := handoff.NewHub(handoff.Config{QueueSize: cfg.SubscriberQueue})
	var broker publish.Broker = &publish.LocalBroker{Hub: hub}
	var natsUp natsLink // stays nil without NATS
	if cfg.NATS.Embedded.Listen != "" {
		ns, url, err := startEmbeddedNATS(cfg.NATS.Embedded)
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		log.Info().Str("listen", cfg.NATS.Embedded.Listen).Str("cluster", cfg.NATS.Embedded.ClusterListen).Msg("embedded NATS server started")
		if cfg.NATS.Client.URL == "" {
			cfg.NATS.Client.URL = url
		}
	}
	if cfg.NATS.Client.URL != "" {
		nb, err := publish.NewNATSBroker(cfg.NATS.Client, hub, log)
		if err != nil {
			return err
		}
		defer nb.Close()
		broker = nb
		natsUp = nb
		log.Info().Str("nats", cfg.NATS.Client.URL).Bool("connected", nb.Connected()).Msg("publishes go through NATS")
	}
	px, err := proxy.NewServer(proxy.Config{
		Table:              table,
		Hub:                hub,
		SigIss:             cfg.Signing.Iss,
		SigKey:             cfg.Signing.Key,
		BackendTimeout:     cfg.BackendTimeout,
		DialTimeout:        cfg.BackendDialTimeout,
		MaxConnsPerBackend: cfg.BackendMaxConns,
		Limits:             cfg.Limits,
		Log:                log,
	})
	if err != nil {
		return err
	}
	api := publish.NewControlAPI(publish.ControlConfig{Auth: cfg.Control.Auth}, broker, log)
	adm := newAdmin(hub, api, natsUp)

	var lc net.ListenConfig
	if reusePort {
		lc.Control = setReusePort
	}
	clientLn, err := lc.Listen(context.Background(), "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("client listener: %w", err)
	}
	clientLimits := cfg.ListenerLimits
	clientLimits.MaxConns = clientMaxConns(clientLimits.MaxConns, openFileLimit())
	clientLn = proxy.NewClientListener(clientLn, clientLimits, log)
	controlLn, err := net.Listen("tcp", cfg.Control.Listen)
	if err != nil {
		clientLn.Close()
		return fmt.Errorf("control listener: %w", err)
	}
	var adminLn net.Listener // nil when the admin listener is off
	if cfg.Admin.Listen != "" {
		if adminLn, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
			clientLn.Close()
			controlLn.Close()
			return fmt.Errorf("admin listener: %w", err)
		}
	}
	errLog := stdlog.New(zerologWriter{log}, "", 0)
	clientSrv := proxy.NewClientServer(px, clientLimits, errLog)
	controlSrv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: errLog}
	adminSrv := &http.Server{Handler: adm, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: errLog}

	errc := make(chan error, 3)
	go func() { errc <- clientSrv.Serve(clientLn) }()
	go func() { errc <- controlSrv.Serve(controlLn) }()
	adminAddr := "off"
	if adminLn != nil {
		adminAddr = adminLn.Addr().String()
		go func() { errc <- adminSrv.Serve(adminLn) }()
	}
	log.Info().Str("listen", clientLn.Addr().String()).Str("control", controlLn.Addr().String()).Str("admin", adminAddr).
		Int("routes", len(cfg.Routes)).Int("max_client_conns", clientLimits.MaxConns).Str("version", version()).Msg("gripd ready")

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down")
	case serveErr = <-errc:
	}
	// /readyz answers 503 from here on, so load balancers stop sending.
	adm.Drain()
	// Held streams and long-polls never go idle by themselves: end them
	// first (long-polls get their timeout response), then shut down.
	hub.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Parked streams and WebSockets have left net/http, so Shutdown does not
	// wait for them: wait here until they have said goodbye (a last chunk,
	// close 1001, a DISCONNECT to the backend), within the same deadline.
	for hub.Stats().Subscribers > 0 && sctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	_ = controlSrv.Shutdown(sctx)
	if err := clientSrv.Shutdown(sctx); err != nil {
		clientSrv.Close()
	}
	// Last, so probes see the drain until the end.
	_ = adminSrv.Shutdown(sctx)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

func newLogger(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Logger{}, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	switch format {
	case "json":
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	default:
		return zerolog.Logger{}, fmt.Errorf("--log-format %q: want json or console", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// zerologWriter turns the standard library's server error log into
// zerolog lines.
type zerologWriter struct{ log zerolog.Logger }

func (z zerologWriter) Write(p []byte) (int, error) {
	z.log.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
