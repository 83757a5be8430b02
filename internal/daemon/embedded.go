package daemon

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/gripd/gripd/internal/config"
)

// startEmbeddedNATS starts the NATS server of an instance that embeds one
// and returns it with the URL clients connect to. With jetStream (for
// history) it keeps its streams in storeDir. run starts the server's
// start-up goroutine (the daemon's group).
func startEmbeddedNATS(cfg config.EmbeddedNATS, jetStream bool, storeDir string, run func(func() error)) (*server.Server, string, error) {
	host, portStr, err := net.SplitHostPort(string(cfg.Listen))
	if err != nil {
		return nil, "", fmt.Errorf("embedded NATS listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, "", fmt.Errorf("embedded NATS listen %q: bad port", cfg.Listen)
	}
	opts := &server.Options{Host: host, Port: port, NoSigs: true, NoLog: true, MaxPayload: 8 << 20}
	if cl := cfg.Cluster; cl.Listen != "" {
		chost, cportStr, err := net.SplitHostPort(string(cl.Listen))
		if err != nil {
			return nil, "", fmt.Errorf("embedded NATS cluster listen %q: %w", cl.Listen, err)
		}
		cport, err := strconv.Atoi(cportStr)
		if err != nil {
			return nil, "", fmt.Errorf("embedded NATS cluster listen %q: bad port", cl.Listen)
		}
		name := cl.Name
		if name == "" {
			name = "gripd"
		}
		opts.Cluster = server.ClusterOpts{Name: name, Host: chost, Port: cport}
		for _, r := range cl.Routes {
			opts.Routes = append(opts.Routes, server.RoutesFromStr(r)...)
		}
	}
	if jetStream { // for history (history.go)
		opts.JetStream, opts.StoreDir = true, storeDir
		// JetStream in a cluster tells its servers apart by name.
		opts.ServerName = "gripd-" + string(cfg.Listen)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("embedded NATS: %w", err)
	}
	run(func() error { s.Start(); return nil })
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, "", fmt.Errorf("embedded NATS on %s not ready after 10 s", cfg.Listen)
	}
	return s, s.ClientURL(), nil
}
