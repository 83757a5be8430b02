package main

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// startEmbeddedNATS starts the NATS server of an instance that embeds one
// and returns it with the URL clients connect to.
func startEmbeddedNATS(cfg EmbeddedNATS) (*server.Server, string, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("embedded NATS listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, "", fmt.Errorf("embedded NATS listen %q: bad port", cfg.Listen)
	}
	opts := &server.Options{Host: host, Port: port, NoSigs: true, NoLog: true, MaxPayload: 8 << 20}
	if cfg.ClusterListen != "" {
		chost, cportStr, err := net.SplitHostPort(cfg.ClusterListen)
		if err != nil {
			return nil, "", fmt.Errorf("embedded NATS cluster listen %q: %w", cfg.ClusterListen, err)
		}
		cport, err := strconv.Atoi(cportStr)
		if err != nil {
			return nil, "", fmt.Errorf("embedded NATS cluster listen %q: bad port", cfg.ClusterListen)
		}
		name := cfg.ClusterName
		if name == "" {
			name = "gripd"
		}
		opts.Cluster = server.ClusterOpts{Name: name, Host: chost, Port: cport}
		for _, r := range cfg.Routes {
			opts.Routes = append(opts.Routes, server.RoutesFromStr(r)...)
		}
	}
	if cfg.JetStream { // for history (history.go)
		opts.JetStream, opts.StoreDir = true, cfg.StoreDir
		// JetStream in a cluster tells its servers apart by name.
		opts.ServerName = "gripd-" + cfg.Listen
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, "", fmt.Errorf("embedded NATS: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, "", fmt.Errorf("embedded NATS on %s not ready after 10 s", cfg.Listen)
	}
	return s, s.ClientURL(), nil
}
