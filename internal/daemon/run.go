package daemon

import (
	"context"
	"os"
	"syscall"
)

// Run serves until a stop signal (SIGTERM, SIGINT) arrives on signals, ctx
// is done or a listener fails, reloading on SIGHUP and, when configured,
// on changes to the config file. It then drains (see Drain; a second stop
// signal hurries it), closes the daemon and returns the listener's error,
// if one failed.
func (d *Daemon) Run(ctx context.Context, signals <-chan os.Signal) error {
	watchCtx, stopWatch := context.WithCancel(ctx)
	d.goroutines.Go(func() error { d.reload.watch(watchCtx); return nil })
	d.serveUntilStop(ctx, signals)
	stopWatch()
	d.reload.stop() // the drain runs on the configuration it began with

	hurry, hurryNow := context.WithCancel(context.Background())
	defer hurryNow()
	drained := make(chan struct{})
	d.goroutines.Go(func() error {
		defer close(drained)
		d.Drain(hurry)
		return nil
	})
	for {
		select {
		case sig := <-signals:
			if sig != syscall.SIGHUP {
				d.log.Warn().Str("signal", sig.String()).Msg("second stop signal: ending every connection now")
				hurryNow()
			}
		case <-drained:
			d.Close()
			return d.goroutines.Err()
		}
	}
}

// serveUntilStop waits for a reason to stop, reloading on SIGHUP.
func (d *Daemon) serveUntilStop(ctx context.Context, signals <-chan os.Signal) {
	for {
		select {
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				_ = d.reload.Reload("SIGHUP")
				continue
			}
			d.log.Info().Str("signal", sig.String()).Msg("stop requested")
			return
		case <-ctx.Done():
			return
		case <-d.goroutines.Failed():
			d.log.Error().Err(d.goroutines.Err()).Msg("a listener failed")
			return
		}
	}
}

// Reload reads the configuration again from Options.Source and puts it
// into effect (see internal/config.Apply). why is for the log. On error
// the running configuration stays.
func (d *Daemon) Reload(why string) error { return d.reload.Reload(why) }
