package daemon

import (
	"context"
	"crypto/sha256"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/internal/config"
)

// reloader reads the configuration again (SIGHUP, a changed file) and
// puts it into effect when it is valid; when it is not, gripd keeps
// running on the old one and the log says why. Which settings apply live
// and which need a restart is internal/config's classify.
type reloader struct {
	src    *config.Source // nil: nothing to reload from
	log    zerolog.Logger
	target config.Target
	// onResult is told each reload's outcome (the metric; tests too).
	onResult func(ok bool)
	// loaded is the config file as it was when gripd started: the watcher
	// reloads when it differs.
	loaded fileStamp
	// watchEvery is how often the file is checked (reload.watch). One
	// second; tests make it shorter.
	watchEvery time.Duration

	mu      sync.Mutex
	running *config.Config // the configuration in effect
	stopped bool           // the drain has begun: no more reloads
}

func newReloader(cfg *config.Config, src *config.Source, target config.Target, log zerolog.Logger, onResult func(bool)) *reloader {
	r := &reloader{src: src, log: log, target: target, onResult: onResult, running: cfg, watchEvery: time.Second}
	if path := r.path(); path != "" {
		r.loaded = stampFile(path)
	}
	return r
}

// path is the config file's path, "" for none.
func (r *reloader) path() string {
	if r.src == nil {
		return ""
	}
	return r.src.Path
}

// current returns the configuration in effect.
func (r *reloader) current() *config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// stop ends reloading: a drain runs on the configuration it began with.
func (r *reloader) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
}

// Reload loads the configuration again and applies it. why is for the
// log. It returns the load error, if any; gripd carries on either way.
func (r *reloader) Reload(why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || r.src == nil {
		return nil
	}
	cfg, err := r.src.Load()
	if err == nil {
		var restart []string
		if restart, err = config.Apply(r.target, r.running, cfg); err == nil {
			r.running = cfg
			ev := r.log.Info()
			if len(restart) > 0 {
				ev = r.log.Warn().Strs("restart_needed", restart)
			}
			ev.Str("trigger", why).Int("routes", len(cfg.Routes)).Msg("config reloaded")
			r.onResult(true)
			return nil
		}
	}
	r.log.Error().Err(err).Str("trigger", why).Msg("config reload failed; still running the previous configuration")
	r.onResult(false)
	return err
}

// watch reloads whenever the config file changes (reload.watch), until
// ctx is done.
func (r *reloader) watch(ctx context.Context) {
	if path := r.path(); path != "" && r.current().Reload.Watch {
		watchFile(ctx, path, r.loaded, r.watchEvery, func() { _ = r.Reload("file changed") })
	}
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
