package publish

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/testutil"
)

func sortedByName(cs []handoff.ChannelCount) []handoff.ChannelCount {
	slices.SortFunc(cs, func(a, b handoff.ChannelCount) int { return strings.Compare(a.Name, b.Name) })
	return cs
}

// Every instance answers with its own counts; the asker sums them and
// says how many answered.
func TestClusterChannelsSumsInstances(t *testing.T) {
	ns := testutil.StartNATS(t)
	a, hubA := newTestBroker(t, ns.ClientURL(), time.Minute)
	_, hubB := newTestBroker(t, ns.ClientURL(), time.Minute)
	odd := "a/b c%d.*>"
	subscribe := func(hub *handoff.Hub, kind handoff.Kind, channels ...string) {
		s := hub.Subscribe(kind, channels)
		t.Cleanup(func() { hub.Unsubscribe(s) })
	}
	subscribe(hubA, handoff.KindStream, "news")
	subscribe(hubA, handoff.KindStream, "news", odd)
	subscribe(hubA, handoff.KindWebSocket, odd)
	subscribe(hubB, handoff.KindResponse, "news")
	subscribe(hubB, handoff.KindStream, "only-b")

	got, err := a.ClusterChannels(testutil.Context(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []handoff.ChannelCount{
		{Name: odd, Streams: 1, WebSockets: 1},
		{Name: "news", Responses: 1, Streams: 2},
		{Name: "only-b", Streams: 1},
	}
	if got.Instances != 2 || !slices.Equal(sortedByName(got.Channels), want) {
		t.Fatalf("ClusterChannels = %d instances %+v, want 2 and %+v", got.Instances, got.Channels, want)
	}

	one, err := a.ClusterChannel(testutil.Context(t), "news", 2)
	if err != nil {
		t.Fatal(err)
	}
	if one.Instances != 2 || !slices.Equal(one.Channels, want[1:2]) {
		t.Fatalf("ClusterChannel(news) = %+v, want 2 instances and %+v", one, want[1])
	}
	none, err := a.ClusterChannel(testutil.Context(t), "nope", 2)
	if err != nil || none.Instances != 2 || len(none.Channels) != 0 {
		t.Fatalf("ClusterChannel(nope) = %+v, %v; want 2 instances, no channel", none, err)
	}
}

// An instance with more channels than fit in one NATS message answers in
// parts, and the asker puts them together.
func TestClusterChannelsInParts(t *testing.T) {
	ns := testutil.StartNATSWith(t, server.Options{MaxPayload: 1024})
	b, hub := newTestBroker(t, ns.ClientURL(), time.Minute)
	var want []handoff.ChannelCount
	for i := range 40 {
		name := fmt.Sprintf("%02d-%s", i, strings.Repeat("x", 60))
		s := hub.Subscribe(handoff.KindWebSocket, []string{name})
		defer hub.Unsubscribe(s)
		want = append(want, handoff.ChannelCount{Name: name, WebSockets: 1})
	}
	if parts := b.replyParts(hub.Channels(), int(b.nc.MaxPayload())-replyHeadroom); len(parts) < 3 {
		t.Fatalf("%d parts; the test needs several", len(parts))
	}
	got, err := b.ClusterChannels(testutil.Context(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Instances != 1 || !slices.Equal(sortedByName(got.Channels), want) {
		t.Fatalf("got %d instances and %d channels, want 1 and %d", got.Instances, len(got.Channels), len(want))
	}
}

// Without expect, gathering ends when the context does, with what came.
func TestClusterChannelsUntilDeadline(t *testing.T) {
	ns := testutil.StartNATS(t)
	b, hub := newTestBroker(t, ns.ClientURL(), time.Minute)
	s := hub.Subscribe(handoff.KindStream, []string{"c"})
	defer hub.Unsubscribe(s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // over before it began: nobody can have answered
	got, err := b.ClusterChannels(ctx, 0)
	if err != nil || got.Instances != 0 || len(got.Channels) != 0 {
		t.Fatalf("got %+v, %v; want nothing and no error", got, err)
	}
}

func TestClusterChannelsWhileDisconnected(t *testing.T) {
	ns := testutil.StartNATS(t)
	b, _ := newTestBroker(t, ns.ClientURL(), time.Minute)
	ns.Shutdown()
	ns.WaitForShutdown()
	waitConnected(t, b, false)
	if _, err := b.ClusterChannels(testutil.Context(t), 1); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("err = %v, want not connected", err)
	}
}

// waitConnected waits until the broker's connection is up (or down).
func waitConnected(t *testing.T, b *NATSBroker, up bool) {
	t.Helper()
	testutil.WaitFor(t, fmt.Sprintf("Connected() to be %v", up), func() bool { return b.Connected() == up })
}

// A NATS restart counts as one reconnect.
func TestNATSBrokerCountsReconnects(t *testing.T) {
	ns := testutil.StartNATS(t)
	b, _ := newTestBroker(t, ns.ClientURL(), time.Minute)
	if n := b.Reconnects(); n != 0 {
		t.Fatalf("Reconnects() = %d at start", n)
	}
	port := ns.Addr().(*net.TCPAddr).Port
	ns.Shutdown()
	ns.WaitForShutdown()
	waitConnected(t, b, false)

	testutil.StartNATSWith(t, server.Options{Port: port}) // the same address again
	waitConnected(t, b, true)
	// The handler runs just after the connection is back.
	testutil.WaitFor(t, "Reconnects() to be 1", func() bool { return b.Reconnects() == 1 })
}
