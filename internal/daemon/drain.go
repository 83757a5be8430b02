package daemon

import (
	"context"
	"net"
	"net/http"
	"time"
)

// shutdownGrace is how long, after the drain window, gripd still waits
// for what the drain does not end itself (plain proxied responses still
// streaming, publishes under way) before it closes them.
const shutdownGrace = 10 * time.Second

// Drain is the lame-duck exit: /readyz fails at once so load balancers
// look elsewhere; the client listener stops accepting; held connections
// end spread over the drain window (streams end cleanly, long-polls get
// their timeout response, WebSockets close 1001 and their backends get a
// DISCONNECT); publishes keep flowing to the connections still held, and
// those under way complete. Connections whose clients leave on their own
// leave the schedule, and the drain is over as soon as none is held, not
// when the window is. Cancelling hurry drops the pace and ends everything
// still held at once. Close follows.
func (d *Daemon) Drain(hurry context.Context) {
	window := d.reload.current().Drain.Duration.Std()
	start := time.Now()
	d.log.Info().Str("window", window.String()).Int64("held", d.hub.Stats().Subscribers).Msg("draining: held connections end spread over the window")
	d.admin.Drain()

	deadline, cancel := context.WithTimeout(hurry, window+shutdownGrace)
	defer cancel()
	// Shutdown stops accepting at once, closes idle keep-alive connections
	// and waits for requests under way, long-polls among them; those end
	// as the hub drains them.
	clientDone := make(chan struct{})
	d.goroutines.Go(func() error {
		defer close(clientDone)
		shutdown(deadline, d.client)
		return nil
	})
	d.hub.Drain(hurry, window)
	// Parked streams and WebSockets have left net/http: wait until they
	// have said goodbye (a last chunk, close 1001, a DISCONNECT).
	_ = d.hub.WaitIdle(deadline)
	<-clientDone
	shutdown(deadline, d.control)
	d.hub.Close() // stops the sequencer's timers; nothing is held any more
	d.log.Info().Str("took", time.Since(start).Round(time.Millisecond).String()).Int64("left", d.hub.Stats().Subscribers).Msg("drained")
}

// shutdown shuts srv down gracefully until ctx is done, then closes it.
func shutdown(ctx context.Context, srv *http.Server) {
	if srv == nil {
		return
	}
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close()
	}
}

// Close closes whatever is still open, the admin listener last so probes
// see the drain until the end, and waits for every goroutine the daemon
// started. Safe to call more than once, and after a failed New or Start.
func (d *Daemon) Close() {
	d.closeOnce.Do(func() {
		for _, srv := range []*http.Server{d.client, d.control, d.adminSrv} {
			if srv != nil {
				srv.Close()
			}
		}
		for _, ln := range []net.Listener{d.clientLn, d.controlLn, d.adminLn} {
			if ln != nil {
				ln.Close()
			}
		}
		if d.admin != nil {
			d.admin.Close() // the status page's sampler
		}
		if d.px != nil {
			d.px.CloseIdleConnections()
		}
		if d.hub != nil {
			d.hub.Close()
		}
		for _, c := range d.closers {
			c()
		}
		d.goroutines.Wait()
	})
}
