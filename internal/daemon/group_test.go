package daemon

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/internal/config"
)

func TestGroup(t *testing.T) {
	g := newGroup()
	release := make(chan struct{})
	g.Go(func() error { <-release; return nil })
	g.Go(func() error { return errors.New("first") })
	<-g.Failed()
	if err := g.Err(); err == nil || err.Error() != "first" {
		t.Fatalf("Err = %v, want the first error", err)
	}
	g.Go(func() error { return errors.New("second") })
	close(release)
	g.Wait()
	if err := g.Err(); err.Error() != "first" {
		t.Errorf("Err after a second failure = %v, want the first kept", err)
	}
}

// A Start that fails (the control port is taken) leaves nothing behind
// once Close has run: TestMain's leak check would see a goroutine.
func TestStartFailureClosesCleanly(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg, err := config.Parse([]byte(daemonYAML("", "http://127.0.0.1:1")))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Control.Listen = config.Address(taken.Addr().String())
	d, err := New(cfg, Options{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Start()
	if err == nil || !strings.Contains(err.Error(), "control listener") {
		t.Errorf("Start with the control port taken: %v", err)
	}
	d.Close()
	d.Close() // twice is fine
}
