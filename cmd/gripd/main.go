// Command gripd is a GRIP reverse proxy: it forwards client requests to
// backends and, when a backend answers with GRIP instructions, holds the
// client open as a long-poll or stream and pushes published content into
// it. See README.md.
//
// The command is flags -> configuration (internal/config) -> daemon
// (internal/daemon); `gripd publish` is publishcmd.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/internal/config"
	"github.com/gripd/gripd/internal/daemon"
	"github.com/gripd/gripd/proxy"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is gripd with its arguments and output passed in; it returns the
// exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Fprintln(stdout, "gripd", version())
			return 0
		case "publish":
			return publishCommand(args[1:], os.Stdin, os.Getenv("GRIP_URL"), stdout, stderr)
		}
	}
	cl, code := parseCommandLine(args, stderr)
	if cl == nil {
		return code
	}
	log, err := newLogger(stderr, cl.logLevel, cl.logFormat)
	if err != nil {
		fmt.Fprintf(stderr, "gripd: %v\n", err)
		return 2
	}
	cfg, err := cl.src.Load()
	if err != nil {
		fmt.Fprintf(stderr, "gripd: %v\n", err)
		return 1
	}
	if cl.check {
		fmt.Fprintf(stdout, "gripd: configuration ok (%d routes)\n", len(cfg.Routes))
		return 0
	}
	return serve(cfg, cl, log)
}

// commandLine is what the flags say.
type commandLine struct {
	src                 config.Source
	logLevel, logFormat string
	check, reusePort    bool
}

// parseCommandLine reads the flags. A nil result means exit with code
// (help, or a usage error already written to stderr).
func parseCommandLine(args []string, stderr io.Writer) (*commandLine, int) {
	fs := flag.NewFlagSet("gripd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cl := &commandLine{}
	src := &cl.src
	fs.StringVar(&cl.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cl.logFormat, "log-format", "json", "json or console")
	fs.BoolVar(&cl.check, "check", false, "validate the configuration and exit")
	fs.BoolVar(&cl.reusePort, "reuse-port", false, "listen for clients with SO_REUSEPORT, so several gripd processes can share the port (the kernel spreads connections)")
	fs.StringVar(&src.Path, "config", "", "routes.yaml to run from (see routes.yaml.example); reloaded on SIGHUP and when it changes")
	fs.StringVar(&src.Listen, "listen", "", "address for clients (default "+config.DefaultListen+")")
	fs.StringVar(&src.ControlListen, "control-listen", "", "address for the control API (default "+config.DefaultControlListen+")")
	fs.StringVar(&src.SigIss, "sig-iss", "", "Grip-Sig issuer (default "+proxy.DefaultSigIss+")")
	fs.StringVar(&src.SigKey, "sig-key", "", "Grip-Sig key: a secret, base64:..., or file:PATH")
	fs.StringVar(&src.NATSURL, "nats", "", "NATS URL to share publishes with other instances (e.g. nats://127.0.0.1:4222)")
	fs.StringVar(&src.NATSEmbedded, "nats-embedded", "", "start an embedded NATS server on this address (e.g. 127.0.0.1:4222)")
	fs.StringVar(&src.AdminListen, "admin-listen", "", "address for health checks and metrics (default "+config.DefaultAdminListen+"; off turns it off)")
	fs.StringVar(&src.DrainDuration, "drain-duration", "", "on SIGTERM/SIGINT, end held connections spread over this long (default "+config.DefaultDrainDuration.String()+"; 0 ends them at once)")
	fs.Var((*routeFlags)(&src.Routes), "route", "a Pushpin route line, e.g. '* 127.0.0.1:8000' (repeatable; replaces the file's routes)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: gripd [flags]\n       gripd publish [flags] CHANNEL [CONTENT]\n       gripd version\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gripd: unexpected argument %q\n", fs.Arg(0))
		return nil, 2
	}
	return cl, 0
}

// routeFlags collects repeated --route values.
type routeFlags []string

func (r *routeFlags) String() string     { return strings.Join(*r, "; ") }
func (r *routeFlags) Set(v string) error { *r = append(*r, v); return nil }

// serve runs the daemon until it is told to stop. SIGHUP reloads; the
// first SIGTERM or SIGINT drains, a second one ends the drain at once.
func serve(cfg *config.Config, cl *commandLine, log zerolog.Logger) int {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(signals)
	d, err := daemon.New(cfg, daemon.Options{Log: log, Source: &cl.src, ReusePort: cl.reusePort, Version: version()})
	if err == nil {
		if err = d.Start(); err != nil {
			d.Close()
		}
	}
	if err != nil {
		log.Error().Err(err).Msg("gripd could not start")
		return 1
	}
	if err := d.Run(context.Background(), signals); err != nil {
		log.Error().Err(err).Msg("gripd stopped")
		return 1
	}
	return 0
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

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
