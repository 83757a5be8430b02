package config

import (
	"fmt"
	"reflect"
	"time"

	"github.com/gripd/gripd/proxy"
	"github.com/gripd/gripd/publish"
)

// A reload compares the running configuration with the one just read,
// key by key, in the manner of nats-server's reload: every key is either
// live, with the function that puts a new value into effect, or
// restart-only, whose new value waits for the next start (the reload
// keeps the running value, so what the log and /metrics report stays
// true). classify is the one place that says which; a key it does not
// know is an error, and a test walks Config so that a new key without a
// class fails in CI rather than being ignored in production.

// Target is what live settings are applied to: the running daemon.
type Target interface {
	// SetTable swaps the route table for the requests to come.
	SetTable(*proxy.Table)
	// SetSigning replaces the server-wide Grip-Sig issuer and key.
	SetSigning(iss string, key []byte)
	// SetBackendLimits replaces the backend timeout and connection cap.
	SetBackendLimits(timeout time.Duration, maxConns int)
	// SetLimits replaces the request-time limits.
	SetLimits(proxy.Limits)
	// SetQueueSize changes the queue of the holds to come.
	SetQueueSize(n int)
	// SetControlAuth changes who may publish.
	SetControlAuth(publish.Auth)
	// SetMaxDeliveryLag changes when publishes are pushed back.
	SetMaxDeliveryLag(time.Duration)
	// SetControlBodyTimeout changes how long a publish body may take.
	SetControlBodyTimeout(time.Duration)
}

// A Change is one key whose value differs between two configurations.
type Change struct {
	// Key is the YAML key path, e.g. "limits.max_channels".
	Key string
	// Restart is true when the new value only takes effect at the next
	// start.
	Restart bool
	// how puts the new value into effect.
	how setting
}

// setting is how a reload treats a key: restart-only, or live through
// apply. Several keys may share one apply (every limits.max_* key goes
// through SetLimits): group names it, and a reload calls it once. A live
// key with no apply is read from the running configuration where it is
// used (drain.duration).
type setting struct {
	restart bool
	group   string
	apply   func(Target, *Config) error
}

func live(group string, apply func(Target, *Config) error) setting {
	return setting{group: group, apply: apply}
}

// classify says how a reload treats key. ok is false for a key it does not
// know: add it here, live with its apply function or restart-only.
func classify(key string) (s setting, ok bool) {
	switch key {
	case "routes":
		return live("routes", applyRoutes), true
	case "signing.iss", "signing.key":
		return live("signing", applySigning), true
	case "backend_timeout", "backend_max_conns":
		return live("backend", applyBackendLimits), true
	case "limits.max_request_body", "limits.max_instruct_body", "limits.max_channels", "limits.max_ws_message",
		"limits.read_body_timeout", "limits.backend_queue_timeout", "limits.max_links_without_hold", "limits.link_interval",
		"limits.ws_message_timeout", "limits.ws_partial_budget":
		return live("limits", applyLimits), true
	case "subscriber_queue":
		return live("subscriber_queue", applyQueueSize), true
	case "control.auth.key", "control.auth.iss", "control.auth.username", "control.auth.password",
		"control.auth.allow_browsers", "control.auth.require_exp":
		return live("control.auth", applyControlAuth), true
	case "control.max_delivery_lag":
		return live("control.max_delivery_lag", applyMaxDeliveryLag), true
	case "control.body_timeout":
		return live("control.body_timeout", applyBodyTimeout), true
	case "drain.duration":
		return live("", nil), true // read when the drain starts
	case "listen", "control.listen", "admin.listen", "control.max_conns", "admin.max_conns", "admin.hosts", "backend_dial_timeout", "reload.watch",
		// The client listener's limits are set when it starts.
		"limits.max_client_conns", "limits.max_header_bytes", "limits.read_header_timeout", "limits.idle_timeout",
		"nats.url", "nats.name", "nats.creds", "nats.nkey", "nats.subject_prefix",
		"nats.user", "nats.password", "nats.token",
		"nats.tls.ca", "nats.tls.cert", "nats.tls.key",
		"nats.embedded.listen", "nats.embedded.store_dir", "nats.embedded.users",
		"nats.embedded.tls.cert", "nats.embedded.tls.key", "nats.embedded.tls.ca", "nats.embedded.tls.verify",
		"nats.embedded.cluster.name", "nats.embedded.cluster.listen", "nats.embedded.cluster.routes",
		"nats.embedded.cluster.user", "nats.embedded.cluster.password",
		"nats.embedded.cluster.tls.cert", "nats.embedded.cluster.tls.key", "nats.embedded.cluster.tls.ca",
		"history.enabled", "history.max_age", "history.max_items_per_channel", "history.duplicate_window",
		"links.allow_hosts":
		return setting{restart: true}, true
	}
	return setting{}, false
}

func applyRoutes(t Target, c *Config) error {
	table, err := proxy.NewTable(c.Routes)
	if err == nil {
		t.SetTable(table)
	}
	return err
}

func applySigning(t Target, c *Config) error {
	t.SetSigning(c.Signing.Iss, c.Signing.Key)
	return nil
}

// applyBackendLimits makes new backend connections, dropping the idle
// keep-alive pool: only when the timeout or the cap changed.
func applyBackendLimits(t Target, c *Config) error {
	t.SetBackendLimits(c.BackendTimeout.Std(), c.BackendMaxConns)
	return nil
}

func applyLimits(t Target, c *Config) error {
	t.SetLimits(c.Limits.Proxy())
	return nil
}

func applyQueueSize(t Target, c *Config) error {
	t.SetQueueSize(c.SubscriberQueue)
	return nil
}

func applyMaxDeliveryLag(t Target, c *Config) error {
	t.SetMaxDeliveryLag(c.Control.MaxDeliveryLag.Std())
	return nil
}

func applyBodyTimeout(t Target, c *Config) error {
	t.SetControlBodyTimeout(c.Control.BodyTimeout.Std())
	return nil
}

func applyControlAuth(t Target, c *Config) error {
	t.SetControlAuth(c.Control.Auth.Publish())
	return nil
}

// Diff lists the keys whose values differ from running to next, each
// with its class. A key classify does not know is an error.
func Diff(running, next *Config) ([]Change, error) {
	var changes []Change
	var unknown error
	walkKeys(reflect.ValueOf(running).Elem(), reflect.ValueOf(next).Elem(), "", func(key string, old, new reflect.Value) {
		if reflect.DeepEqual(old.Interface(), new.Interface()) {
			return
		}
		s, ok := classify(key)
		if !ok {
			unknown = fmt.Errorf("config reload: %s has no reload class (internal/config classify)", key)
			return
		}
		changes = append(changes, Change{Key: key, Restart: s.restart, how: s})
	})
	return changes, unknown
}

// Apply puts next into effect on t where it differs from running: each
// live change through its applier (once per applier), and each
// restart-only key set back in next to its running value. It returns the
// restart-only keys that changed, for the log.
func Apply(t Target, running, next *Config) (restartNeeded []string, err error) {
	changes, err := Diff(running, next)
	if err != nil {
		return nil, err
	}
	done := map[string]bool{}
	for _, c := range changes {
		switch {
		case c.Restart:
			restartNeeded = append(restartNeeded, c.Key)
			keep(running, next, c.Key)
		case c.how.apply != nil && !done[c.how.group]:
			done[c.how.group] = true
			if err := c.how.apply(t, next); err != nil {
				return restartNeeded, fmt.Errorf("%s: %w", c.Key, err)
			}
		}
	}
	return restartNeeded, nil
}

// keep sets key in next back to its value in running.
func keep(running, next *Config, key string) {
	walkKeys(reflect.ValueOf(running).Elem(), reflect.ValueOf(next).Elem(), "", func(k string, old, new reflect.Value) {
		if k == key {
			new.Set(old)
		}
	})
}

// walkKeys calls f with the key path of every setting of two Configs (a
// and b, walked together) and their values. Sections (structs) are walked
// into; anything else is a setting, routes included.
func walkKeys(a, b reflect.Value, prefix string, f func(key string, a, b reflect.Value)) {
	for i := range a.NumField() {
		field := a.Type().Field(i)
		key := yamlKey(field)
		if key == "" {
			continue
		}
		if field.Type.Kind() == reflect.Struct {
			walkKeys(a.Field(i), b.Field(i), prefix+key+".", f)
			continue
		}
		f(prefix+key, a.Field(i), b.Field(i))
	}
}
