package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/nats-io/nats.go"
)

// Recoverer is a Broker that can carry POST /recover to the hubs it
// delivers to. Pushpin's recover forgets every channel's last id and
// updates every held HTTP connection: long-polls are re-requested from
// their backend (with Grip-Last for the channels that have a prev-id),
// streams with a next link fetch it. It is what a publisher asks for after
// it lost track of what it published (a restart, a gap in its ids).
type Recoverer interface {
	// Recover asks every hub to recover (handoff.Hub.Recover). Like
	// Publish, a nil error means every hub will get the request.
	Recover(ctx context.Context) error
}

// Recover recovers this instance's hub.
func (b LocalBroker) Recover(ctx context.Context) error {
	if b.Hub == nil {
		return errors.New("local broker: no hub")
	}
	b.Hub.Recover()
	return nil
}

// RecoverSubject is the subject a recover travels on to every instance.
func RecoverSubject(prefix string) string { return prefix + ".recover" }

// Recover puts a recover request on NATS, which every instance of the
// fleet takes for its own hub, and returns once NATS has it.
func (b *NATSBroker) Recover(ctx context.Context) error {
	if !b.nc.IsConnected() {
		return fmt.Errorf("NATS is not connected (%s)", b.nc.Status())
	}
	if err := b.nc.Publish(RecoverSubject(b.cfg.SubjectPrefix), nil); err != nil {
		return fmt.Errorf("NATS publish: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.FlushTimeout)
	defer cancel()
	if err := b.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("NATS did not confirm the recover: %w", err)
	}
	return nil
}

// recoverFromNATS is every instance's side of a recover.
func (b *NATSBroker) recoverFromNATS(*nats.Msg) {
	b.log.Info().Msg("recover: re-requesting held long-polls and fetching next links")
	b.hub.Recover()
}

// serveRecover answers POST /recover as Pushpin does ("Updated"), once the
// broker has taken the request. A broker that cannot recover makes the
// path unknown (404), as it was before gripd had it.
func (c *ControlAPI) serveRecover(w http.ResponseWriter, r *http.Request, asJSON bool) {
	rc, ok := c.broker.(Recoverer)
	if !ok {
		writeText(w, http.StatusNotFound, "Not Found\n")
		return
	}
	if c.fromBrowser(r) {
		c.refuseBrowser(w, r)
		return
	}
	if !c.authorized(r) {
		c.challenge(w)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeText(w, http.StatusMethodNotAllowed, "Method not allowed: "+r.Method+".\n")
		return
	}
	if err := rc.Recover(r.Context()); err != nil {
		c.log.Error().Err(err).Msg("recover: broker failed")
		writeText(w, http.StatusServiceUnavailable, fmt.Sprintf("Recover failed: %v\n", err))
		return
	}
	c.log.Info().Msg("recover requested")
	if asJSON {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"message":"Updated"}`+"\n")
		return
	}
	writeText(w, http.StatusOK, "Updated\n")
}
