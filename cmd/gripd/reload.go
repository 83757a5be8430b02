package main

import (
	"context"
	"crypto/sha256"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/proxy"
)

// reloader reads the configuration again (SIGHUP, a changed file) and
// puts it into effect when it is valid; when it is not, gripd keeps
// running on the old one and the log says why.
//
// Live: routes and their backends, signing, control API auth, backend
// timeout and connection cap, subscriber queue, drain duration, the
// request limits (limits.max_request_body, max_instruct_body,
// max_channels, max_ws_message). Restart only: the listen addresses, the
// NATS settings, reload.watch, history, backend_dial_timeout and the
// client listener's limits; a reload that changes them logs that a
// restart is needed and keeps the running values, so what the log and
// /metrics report stays true.
type reloader struct {
	src   *configSource
	log   zerolog.Logger
	apply func(old, cfg *Config, table *proxy.Table)
	// onResult, when set, is told each reload's outcome (metrics).
	onResult func(ok bool)

	mu      sync.Mutex
	running *Config // the configuration in effect
}

// current returns the configuration in effect.
func (r *reloader) current() *Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// Reload loads the configuration again and applies it. why is for the
// log. It returns the load error, if any; gripd carries on either way.
func (r *reloader) Reload(why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, table, err := r.src.load()
	if err != nil {
		r.log.Error().Err(err).Str("trigger", why).Msg("config reload failed; still running the previous configuration")
		r.report(false)
		return err
	}
	restart := keepRestartOnly(r.running, cfg)
	r.apply(r.running, cfg, table)
	r.running = cfg
	ev := r.log.Info()
	if len(restart) > 0 {
		ev = r.log.Warn().Strs("restart_needed", restart)
	}
	ev.Str("trigger", why).Int("routes", len(cfg.Routes)).Msg("config reloaded")
	r.report(true)
	return nil
}

func (r *reloader) report(ok bool) {
	if r.onResult != nil {
		r.onResult(ok)
	}
}

// keepRestartOnly finds the settings of next that cannot change while
// gripd runs, names those that differ from running, and sets them back to
// the running values.
func keepRestartOnly(running, next *Config) []string {
	var changed []string
	keep := func(name string, run, nxt any, restore func()) {
		if !reflect.DeepEqual(run, nxt) {
			changed = append(changed, name)
			restore()
		}
	}
	keep("listen", running.Listen, next.Listen, func() { next.Listen = running.Listen })
	keep("control.listen", running.Control.Listen, next.Control.Listen, func() { next.Control.Listen = running.Control.Listen })
	keep("admin.listen", running.Admin.Listen, next.Admin.Listen, func() { next.Admin.Listen = running.Admin.Listen })
	keep("nats", running.NATS, next.NATS, func() { next.NATS = running.NATS })
	keep("reload.watch", running.Reload, next.Reload, func() { next.Reload = running.Reload })
	keep("backend_dial_timeout", running.BackendDialTimeout, next.BackendDialTimeout, func() { next.BackendDialTimeout = running.BackendDialTimeout })
	// The client listener's limits are set when it starts.
	keep("limits (max_client_conns, max_header_bytes, read_header_timeout, idle_timeout)", running.ListenerLimits, next.ListenerLimits,
		func() { next.ListenerLimits = running.ListenerLimits })
	keep("history", running.History, next.History, func() { next.History = running.History })
	return changed
}

// watchFile calls changed whenever the file at path differs from loaded
// (or from what it was at the last call) and then has stayed the same for
// one interval (an editor or a config tool may write it in several
// steps), until ctx is done. It polls and compares contents: reading a
// small file once a second costs nothing, works on every filesystem (bind
// mounts and ConfigMap symlink swaps included), needs no dependency, and
// unlike size and mtime cannot miss two writes within one clock tick.
func watchFile(ctx context.Context, path string, loaded fileStamp, interval time.Duration, changed func()) {
	applied, last := loaded, loaded
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		now := stampFile(path)
		if now != last {
			last = now // still changing: wait for it to settle
			continue
		}
		if now != applied && now.exists {
			applied = now
			changed()
		}
	}
}

// fileStamp identifies a version of the config file.
type fileStamp struct {
	exists bool
	sum    [sha256.Size]byte
}

func stampFile(path string) fileStamp {
	data, err := os.ReadFile(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{exists: true, sum: sha256.Sum256(data)}
}
