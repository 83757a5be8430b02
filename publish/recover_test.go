package publish

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/testutil"
)

// recoveringBroker is a recordingBroker that can also recover.
type recoveringBroker struct {
	recordingBroker
	recovers int
	err      error
}

func (b *recoveringBroker) Recover(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	b.recovers++
	return nil
}

func TestControlAPIRecover(t *testing.T) {
	broker := &recoveringBroker{}
	srv := httptest.NewServer(NewControlAPI(ControlConfig{Auth: Auth{Username: "u", Password: "p"}}, broker, zerolog.Nop()))
	t.Cleanup(srv.Close)
	auth := []string{"Authorization", "Basic dTpw"} // u:p

	send(t, srv, "POST", "/recover", nil).check(t, 401, "Unauthorized\n")
	send(t, srv, "GET", "/recover", nil, auth...).check(t, 405, "Method not allowed: GET.\n")
	send(t, srv, "POST", "/recover", nil, auth...).check(t, 200, "Updated\n")
	r := send(t, srv, "POST", "/recover/", nil, append(auth, "Accept", "application/json")...)
	r.check(t, 200, `{"message":"Updated"}`+"\n")
	if broker.recovers != 2 {
		t.Fatalf("broker recovered %d times, want 2", broker.recovers)
	}
	broker.err = errors.New("NATS is down")
	send(t, srv, "POST", "/recover", nil, auth...).check(t, 503, "Recover failed: NATS is down\n")
}

// recovering waits for sub's recover signal.
func recovering(t *testing.T, sub *handoff.Subscriber) {
	t.Helper()
	select {
	case <-sub.Recovering():
	case <-time.After(5 * time.Second):
		t.Fatal("no recover signal")
	}
}

func TestLocalBrokerRecover(t *testing.T) {
	hub := handoff.NewHub(handoff.Config{})
	defer hub.Close()
	watcher := hub.Subscribe(handoff.KindStream, []string{"c"})
	defer hub.Unsubscribe(watcher)
	hub.Deliver([]grip.Item{{Channel: "c", ID: "1", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend}}})
	held := hub.SubscribeHold(handoff.KindResponse, handoff.HoldSpec{Channels: []grip.Channel{{Name: "c"}}, Recoverable: true})
	defer hub.Unsubscribe(held)

	srv := httptest.NewServer(NewControlAPI(ControlConfig{}, LocalBroker{Hub: hub}, zerolog.Nop()))
	t.Cleanup(srv.Close)
	send(t, srv, "POST", "/recover", nil).check(t, 200, "Updated\n")
	recovering(t, held)
	if id, ok := hub.LastID("c"); ok {
		t.Fatalf("last id %q kept after recover", id)
	}
}

// A recover on one instance's control API reaches every instance.
func TestNATSBrokerRecoverReachesEveryInstance(t *testing.T) {
	ns := testutil.StartNATS(t)
	a, _ := newTestBroker(t, ns.ClientURL(), time.Minute)
	_, hubB := newTestBroker(t, ns.ClientURL(), time.Minute)
	held := hubB.SubscribeHold(handoff.KindResponse, handoff.HoldSpec{Channels: []grip.Channel{{Name: "c"}}, Recoverable: true})
	defer hubB.Unsubscribe(held)
	if err := a.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	recovering(t, held)
}

// When an instance stops receiving a channel (its NATS linger ended), it
// forgets the channel's last id: items it then missed must not make the
// next ones wait.
func TestNATSBrokerForgetsChannelsItStopsReceiving(t *testing.T) {
	ns := testutil.StartNATS(t)
	b, hub := newTestBroker(t, ns.ClientURL(), 10*time.Millisecond)
	sub := hub.Subscribe(handoff.KindStream, []string{"c"})
	if err := b.Publish(context.Background(), []grip.Item{{Channel: "c", ID: "1", HTTPStream: &grip.HTTPStreamFormat{Action: grip.ActionSend}}}); err != nil {
		t.Fatal(err)
	}
	recvItem(t, sub)
	if id, ok := hub.LastID("c"); !ok || id != "1" {
		t.Fatalf("LastID = %q, %v; want 1", id, ok)
	}
	hub.Unsubscribe(sub)
	testutil.WaitFor(t, "the NATS unsubscribe after the linger", func() bool { return b.NATSSubscriptions() == 0 })
	if id, ok := hub.LastID("c"); ok {
		t.Fatalf("LastID = %q after the NATS unsubscribe, want none", id)
	}
}
