// Package config is gripd's configuration: one definition of every
// setting, read from the YAML file (routes.yaml) and the flags.
//
// # One place per setting
//
// A setting is one field of Config (or of one of its sections). The
// field's yaml tag is its key; its comment is its documentation
// (docs/configuration.md says the same for users, and a test fails when
// the page and the tags disagree); its default is set in Default; its
// reload class, live or restart-only, is in classify (reload.go), and a
// test fails when a field has none. Adding a setting is: the field with
// its comment and tag, its default, its class, its row in the docs page.
//
// # Defaults
//
// A default is written once. Where a library package falls back to a
// default when given zero (proxy.DefaultBackendTimeout,
// handoff.DefaultQueueSize, publish.DefaultHistoryMaxAge, ...), the
// literal lives in that package, beside the code that uses it, and Default
// refers to the constant: the library stays usable on its own, and the
// data flow stays one way (this package imports proxy, publish and
// handoff; they never import it). Defaults that only the daemon knows
// (listen addresses, the drain window) are constants here.
//
// # Values and errors
//
// Values that need more than yaml's reading parse themselves: Duration,
// Size ("64KiB"), Address ("host:port"), OptionalAddress ("off"), Key
// (a secret, "base64:..." or "file:PATH"). The decoder walks the YAML
// node tree against the struct, so every error gives the line and the
// key, like a compiler's: "routes.yaml: line 7: limits.max_channels 0:
// must be at least 1". Unknown keys are errors. Routes, from the file's
// routes: list or --route lines (proxy.ParseRouteLine), are checked with
// the route table's own rules when loaded.
//
// # Reload
//
// Apply compares a running configuration with a reloaded one key by key
// (Diff): live keys are put into effect through a Target (the daemon),
// restart-only keys keep their running values and are reported.
package config
