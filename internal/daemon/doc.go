// Package daemon is a whole gripd instance you can import: the hub, the
// proxy, the control API, the admin listener and the link to the fleet,
// built from an internal/config.Config.
//
// # Life of a daemon
//
//	d, err := daemon.New(cfg, daemon.Options{Log: log, Source: &src})
//	if err != nil { ... }          // New closed what it had built
//	if err := d.Start(); err != nil {
//		d.Close()                  // Start opened the listeners; Close releases them
//		...
//	}
//	err = d.Run(ctx, signals)      // serves; drains and closes before it returns
//
// New builds the parts in the order they depend on each other (the hub,
// NATS and history, the control API, the metrics, the proxy, the admin
// handler) and opens no client listener. Start opens the client, control
// and admin listeners and serves them. Run serves until a stop signal
// (SIGTERM, SIGINT), the context's end or a failed listener, reloading on
// SIGHUP and when the file changes (reload.watch); then it drains: Drain
// fails /readyz, stops accepting, ends the held connections spread over
// drain.duration (a second stop signal ends them at once) and waits,
// without polling, until the hub has none left; Close closes the rest and
// waits for every goroutine the daemon started.
//
// # Goroutines
//
// Every goroutine the daemon starts (each listener's server, the config
// file watcher, the drain, the embedded NATS server's start-up) is
// started through one owner, a group; Close waits for all of them, and
// the first one to fail (a listener that stops serving) makes Run stop.
//
// # Reload
//
// Reload (or SIGHUP, or a changed file) reads the configuration again from
// Options.Source and hands it to internal/config.Apply, which puts the
// live settings into effect through the daemon's parts and keeps the
// running value of every restart-only one; a configuration that does not
// load leaves the running one in place.
package daemon
