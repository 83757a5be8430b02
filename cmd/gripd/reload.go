package main

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
	src    *config.Source
	log    zerolog.Logger
	target config.Target
	// onResult, when set, is told each reload's outcome (metrics).
	onResult func(ok bool)

	mu      sync.Mutex
	running *config.Config // the configuration in effect
}

// current returns the configuration in effect.
func (r *reloader) current() *config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// Reload loads the configuration again and applies it. why is for the
// log. It returns the load error, if any; gripd carries on either way.
func (r *reloader) Reload(why string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
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
			r.report(true)
			return nil
		}
	}
	r.log.Error().Err(err).Str("trigger", why).Msg("config reload failed; still running the previous configuration")
	r.report(false)
	return err
}

func (r *reloader) report(ok bool) {
	if r.onResult != nil {
		r.onResult(ok)
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
