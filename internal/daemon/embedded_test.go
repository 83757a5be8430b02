package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/gripd/gripd/internal/config"
	"github.com/gripd/gripd/internal/testutil"
)

// embeddedAuthYAML runs the embedded server with a publisher, an instance
// and a system user.
func embeddedAuthYAML(addr string) string {
	return fmt.Sprintf(`nats:
  embedded:
    listen: %q
    users:
      - {user: pub, password: pub-secret}
      - {user: inst, password: inst-secret, role: instance}
      - {user: ops, password: ops-secret, role: system}
`, addr)
}

// natsErrors connects to url with opts and returns the connection and the
// asynchronous errors the server sends it (permissions violations).
func natsErrors(t *testing.T, url string, opts ...nats.Option) (*nats.Conn, chan error) {
	t.Helper()
	errs := make(chan error, 8)
	opts = append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func TestEmbeddedNATSRefusesUnauthenticatedClient(t *testing.T) {
	addr := testutil.FreeAddr(t)
	startTestDaemon(t, daemonYAML(embeddedAuthYAML(addr), backend(t, "A").URL))
	for _, opts := range [][]nats.Option{nil, {nats.UserInfo("pub", "wrong")}} {
		nc, err := nats.Connect("nats://"+addr, opts...)
		if err == nil {
			nc.Close()
			t.Fatal("a client without valid credentials connected to the embedded NATS server")
		}
		if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("connect error %v, want an authorization violation", err)
		}
	}
}

// A publisher publishes through <prefix>.publish and reaches clients, but
// reads no channel, asks no recover and lists no channels; an instance
// user reads items; a system user reaches the system account.
func TestEmbeddedNATSPublisherCannotSubscribeToItems(t *testing.T) {
	addr := testutil.FreeAddr(t)
	td := startTestDaemon(t, daemonYAML(embeddedAuthYAML(addr), backend(t, "A").URL))
	url := "nats://" + addr

	inst, _ := natsErrors(t, url, nats.UserInfo("inst", "inst-secret"))
	seen, err := inst.SubscribeSync("gripd.ch.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.Flush(); err != nil {
		t.Fatal(err)
	}

	pub, pubErrs := natsErrors(t, url, nats.UserInfo("pub", "pub-secret"))
	if _, err := pub.SubscribeSync("gripd.ch.>"); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish("gripd.recover", nil); err != nil {
		t.Fatal(err)
	}
	_ = pub.Flush()
	for range 2 {
		select {
		case err := <-pubErrs:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("publisher got %v, want a permissions violation", err)
			}
		case <-time.After(failAfter):
			t.Fatal("the publisher's subscription to gripd.ch.> and its recover were not refused")
		}
	}

	stream, closeStream := openStream(t, td.url("/stream"))
	defer closeStream()
	msg, err := pub.Request("gripd.publish", []byte(`{"items":[{"channel":"news","formats":{"http-stream":{"content":"via NATS\n"}}}]}`), failAfter)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "Published" {
		t.Fatalf("publish answered %q", msg.Data)
	}
	if got := stream.ReadLine(); got != "via NATS\n" {
		t.Fatalf("client got %q", got)
	}
	if _, err := seen.NextMsg(failAfter); err != nil {
		t.Fatalf("the instance user did not see the item: %v", err)
	}

	ops, _ := natsErrors(t, url, nats.UserInfo("ops", "ops-secret"))
	if _, err := ops.Request("$SYS.REQ.SERVER.PING", nil, failAfter); err != nil {
		t.Fatalf("the system user cannot reach the system account: %v", err)
	}
}

// The embedded server's max_payload keeps bodies far over the publish
// limit out; one just over the limit is refused by gripd.
func TestEmbeddedNATSPublishBodyLimit(t *testing.T) {
	addr := testutil.FreeAddr(t)
	startTestDaemon(t, daemonYAML(embeddedAuthYAML(addr), backend(t, "A").URL))
	pub, _ := natsErrors(t, "nats://"+addr, nats.UserInfo("pub", "pub-secret"))
	if max := pub.MaxPayload(); max > 2_000_000 {
		t.Fatalf("embedded server's max_payload is %d, want at most twice the 1,000,000-byte publish limit", max)
	}
	if err := pub.Publish("gripd.ch.news", bytes.Repeat([]byte("x"), 7_200_000)); !errors.Is(err, nats.ErrMaxPayload) {
		t.Fatalf("a 7.2 MB item: %v, want %v", err, nats.ErrMaxPayload)
	}
	body := `{"items":[{"channel":"news","formats":{"http-stream":{"content":"` + strings.Repeat("x", 1_200_000) + `"}}}]}`
	msg, err := pub.Request("gripd.publish", []byte(body), failAfter)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "Request body too large." {
		t.Fatalf("a 1.2 MB body answered %q", msg.Data)
	}
}

func TestEmbeddedNATSWarnsWhenOpenBeyondLoopback(t *testing.T) {
	for _, tc := range []struct {
		cfg  config.EmbeddedNATS
		warn bool
	}{
		{config.EmbeddedNATS{Listen: "0.0.0.0:4222"}, true},
		{config.EmbeddedNATS{Listen: ":4222"}, true},
		{config.EmbeddedNATS{Listen: "10.0.0.5:4222"}, true},
		{config.EmbeddedNATS{Listen: "127.0.0.1:4222"}, false},
		{config.EmbeddedNATS{Listen: "0.0.0.0:4222", Users: []config.NATSUser{{User: "a", Password: config.Key("b"), Role: "publisher"}}}, false},
		{config.EmbeddedNATS{Listen: "127.0.0.1:4222", Cluster: config.NATSCluster{Listen: "0.0.0.0:6222"}}, true},
		{config.EmbeddedNATS{Listen: "127.0.0.1:4222", Cluster: config.NATSCluster{Listen: "0.0.0.0:6222", User: "r", Password: config.Key("p")}}, false},
	} {
		var buf bytes.Buffer
		warnOpenEmbedded(tc.cfg, zerolog.New(&buf))
		if got := strings.Contains(buf.String(), "WITHOUT AUTHENTICATION"); got != tc.warn {
			t.Errorf("%+v: warned %v, want %v (log %q)", tc.cfg, got, tc.warn, buf.String())
		}
	}
}

// Route URLs without credentials get the cluster's; the cluster port asks
// for them.
func TestEmbeddedNATSClusterRoutesCarryCredentials(t *testing.T) {
	opts, _, err := embeddedOptions(config.EmbeddedNATS{Listen: "127.0.0.1:4222", Cluster: config.NATSCluster{
		Listen: "127.0.0.1:6222", User: "route", Password: config.Key("rpw"),
		Routes: []string{"nats://10.0.0.2:6222", "nats://other:pw@10.0.0.3:6222"},
	}}, "gripd")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Cluster.Username != "route" || opts.Cluster.Password != "rpw" {
		t.Fatalf("cluster auth %q/%q", opts.Cluster.Username, opts.Cluster.Password)
	}
	var got []string
	for _, u := range opts.Routes {
		got = append(got, u.String())
	}
	if want := "nats://route:rpw@10.0.0.2:6222 nats://other:pw@10.0.0.3:6222"; strings.Join(got, " ") != want {
		t.Fatalf("routes %v, want %s", got, want)
	}
}

// With TLS on the client port, clients must use it (and trust the CA);
// gripd's own in-process connection needs none.
func TestEmbeddedNATSClientTLS(t *testing.T) {
	certs := writeTestCerts(t)
	addr := testutil.FreeAddr(t)
	td := startTestDaemon(t, daemonYAML(fmt.Sprintf(`nats:
  embedded:
    listen: %q
    users: [{user: pub, password: pub-secret}]
    tls: {cert: %q, key: %q}
`, addr, certs.cert, certs.key), backend(t, "A").URL))
	if nc, err := nats.Connect("nats://"+addr, nats.UserInfo("pub", "pub-secret")); err == nil {
		nc.Close()
		t.Fatal("a client without TLS connected")
	}
	pub, _ := natsErrors(t, "tls://"+addr, nats.UserInfo("pub", "pub-secret"), nats.RootCAs(certs.ca))
	stream, closeStream := openStream(t, td.url("/stream"))
	defer closeStream()
	td.publish(t, "news", "via control API\n") // gripd's own connection
	if got := stream.ReadLine(); got != "via control API\n" {
		t.Fatalf("client got %q", got)
	}
	msg, err := pub.Request("gripd.publish", []byte(`{"items":[{"channel":"news","formats":{"http-stream":{"content":"via TLS\n"}}}]}`), failAfter)
	if err != nil {
		t.Fatalf("publish over TLS: %v", err)
	}
	if string(msg.Data) != "Published" {
		t.Fatalf("publish over TLS answered %q", msg.Data)
	}
	if got := stream.ReadLine(); got != "via TLS\n" {
		t.Fatalf("client got %q", got)
	}
}
