package daemon

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/admin"
	"github.com/gripd/gripd/internal/config"
	"github.com/gripd/gripd/proxy"
	"github.com/gripd/gripd/publish"
)

// Options are what a daemon takes besides its configuration.
type Options struct {
	// Log receives gripd's log lines.
	Log zerolog.Logger
	// Source is where a reload (SIGHUP, a changed file, Reload) reads the
	// configuration again. nil: reloads keep the running configuration.
	Source *config.Source
	// ReusePort listens for clients with SO_REUSEPORT, so several
	// processes can share the port.
	ReusePort bool
	// Version is gripd's version, for the log and the admin listener.
	Version string
}

// Daemon is a gripd instance: the hub, the proxy, the control API, the
// admin listener, the NATS link, and their listeners. See the package
// documentation for its life.
type Daemon struct {
	opts Options
	log  zerolog.Logger

	hub     *handoff.Hub
	px      *proxy.Server
	api     *publish.ControlAPI
	metrics *admin.Metrics
	admin   *admin.Handler
	reload  *reloader
	// closers run last, in order: the NATS connection, then the embedded
	// server and its store.
	closers []func()

	// Set by Start.
	client, control, adminSrv    *http.Server
	clientLn, controlLn, adminLn net.Listener // adminLn nil when off

	// goroutines owns every goroutine the daemon starts; Close waits for
	// them.
	goroutines *group
	closeOnce  sync.Once
}

// New builds a daemon from cfg: the hub, the connection to NATS (starting
// the embedded server and history when configured), the control API, the
// proxy and the admin handler. It opens no client listener; Start does.
// On error, everything New made is closed again.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	d := &Daemon{opts: opts, log: opts.Log, goroutines: newGroup()}
	if err := d.build(cfg); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// build makes the parts, in the order they depend on each other.
func (d *Daemon) build(cfg *config.Config) error {
	table, err := proxy.NewTable(cfg.Routes)
	if err != nil {
		return err
	}
	d.hub = handoff.NewHub(handoff.Config{QueueSize: cfg.SubscriberQueue})
	f, err := d.joinFleet(cfg)
	if err != nil {
		return err
	}
	d.api = publish.NewControlAPI(publish.ControlConfig{Auth: cfg.Control.Auth.Publish(),
		Lag: d.hub.DeliveryLag, MaxLag: cfg.Control.MaxDeliveryLag.Std(), BodyTimeout: cfg.Control.BodyTimeout.Std()}, f.broker, d.log)
	parts := admin.Parts{Hub: d.hub, API: d.api, NATS: f.nats, Version: d.opts.Version, Hosts: cfg.Admin.Hosts}
	d.metrics = admin.NewMetrics(parts)
	if d.px, err = proxy.NewServer(d.proxyConfig(cfg, table, f.history)); err != nil {
		return err
	}
	d.admin = admin.New(parts, d.metrics)
	d.reload = newReloader(cfg, d.opts.Source, liveTarget{d}, d.log, d.metrics.ConfigReloaded)
	return nil
}

// proxyConfig is the proxy's part of cfg.
func (d *Daemon) proxyConfig(cfg *config.Config, table *proxy.Table, history handoff.History) proxy.Config {
	return proxy.Config{
		Table:              table,
		Hub:                d.hub,
		SigIss:             cfg.Signing.Iss,
		SigKey:             cfg.Signing.Key,
		BackendTimeout:     cfg.BackendTimeout.Std(),
		DialTimeout:        cfg.BackendDialTimeout.Std(),
		MaxConnsPerBackend: cfg.BackendMaxConns,
		Limits:             cfg.Limits.Proxy(),
		Log:                d.log,
		Observer:           d.metrics.Proxy(),
		History:            history,
		HistoryLimit:       cfg.History.MaxItemsPerChannel,
		LinkHosts:          cfg.Links.AllowHosts,
	}
}

// Config returns the configuration in effect (the last reload's); it is
// shared, so read it and do not change it.
func (d *Daemon) Config() *config.Config { return d.reload.current() }

// ClientAddr, ControlAddr and AdminAddr are the addresses the listeners
// opened by Start listen on (AdminAddr nil when the admin listener is
// off); nil before Start.
func (d *Daemon) ClientAddr() net.Addr  { return addr(d.clientLn) }
func (d *Daemon) ControlAddr() net.Addr { return addr(d.controlLn) }
func (d *Daemon) AdminAddr() net.Addr   { return addr(d.adminLn) }

func addr(ln net.Listener) net.Addr {
	if ln == nil {
		return nil
	}
	return ln.Addr()
}

// liveTarget applies a reload's live settings to the daemon's parts
// (config.Target). Held connections are not touched: they keep the route,
// queue and signer they were made with.
type liveTarget struct{ d *Daemon }

func (t liveTarget) SetTable(table *proxy.Table)       { t.d.px.SetTable(table) }
func (t liveTarget) SetSigning(iss string, key []byte) { t.d.px.SetSigning(iss, key) }
func (t liveTarget) SetLimits(l proxy.Limits)          { t.d.px.SetLimits(l) }
func (t liveTarget) SetQueueSize(n int)                { t.d.hub.SetQueueSize(n) }
func (t liveTarget) SetControlAuth(auth publish.Auth)  { t.d.api.SetAuth(auth) }
func (t liveTarget) SetMaxDeliveryLag(d time.Duration) { t.d.api.SetMaxLag(d) }

func (t liveTarget) SetControlBodyTimeout(d time.Duration) { t.d.api.SetBodyTimeout(d) }
func (t liveTarget) SetBackendLimits(timeout time.Duration, maxConns int) {
	t.d.px.SetBackendLimits(timeout, maxConns)
}
