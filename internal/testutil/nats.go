package testutil

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// StartNATS starts an in-process NATS server on a loopback port the
// kernel chooses, and waits until it takes connections. It shuts down
// when the test ends.
func StartNATS(t testing.TB) *server.Server {
	t.Helper()
	return StartNATSWith(t, server.Options{})
}

// StartNATSWith is StartNATS with opts: the host and port it listens on
// are the kernel's choice on loopback unless opts sets them; it never
// logs or handles signals. For JetStream set opts.JetStream and
// opts.StoreDir (t.TempDir()).
func StartNATSWith(t testing.TB, opts server.Options) *server.Server {
	t.Helper()
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(WaitTimeout) {
		s.Shutdown()
		t.Fatal("NATS not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}
