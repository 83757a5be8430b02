package main

import (
	"fmt"
	"net"

	"go.yaml.in/yaml/v3"

	"github.com/gripd/gripd/publish"
)

// NATSSection is the YAML nats: section: how this instance joins a fleet.
type NATSSection struct {
	// Client is the connection to NATS. With no URL (and no embedded
	// server) gripd runs alone with the local broker, the default.
	Client publish.NATSConfig
	// Embedded, when Listen is set, starts a NATS server inside gripd.
	Embedded EmbeddedNATS
}

// EmbeddedNATS is a NATS server run inside gripd, so a few instances can
// form a fleet with nothing else installed.
type EmbeddedNATS struct {
	// Listen is the client address of the embedded server, e.g.
	// "127.0.0.1:4222". Default none (no embedded server).
	Listen string
	// ClusterName, ClusterListen and Routes cluster embedded servers of
	// several instances: each listens for routes on ClusterListen and
	// connects to the others' Routes (nats://host:port). Default none.
	ClusterName   string
	ClusterListen string
	Routes        []string

	// StoreDir is where the embedded server's JetStream keeps history
	// (YAML store_dir); it runs JetStream only when history is enabled.
	// Default: a new temporary directory, removed when gripd exits, so
	// history does not outlive the process.
	StoreDir string
	// JetStream is set when history is enabled (history.go).
	JetStream bool
}

// fileNATS mirrors the nats: section.
type fileNATS struct {
	URL           string `yaml:"url"`
	Name          string `yaml:"name"`
	Creds         string `yaml:"creds"`
	NKey          string `yaml:"nkey"`
	SubjectPrefix string `yaml:"subject_prefix"`
	TLS           struct {
		CA   string `yaml:"ca"`
		Cert string `yaml:"cert"`
		Key  string `yaml:"key"`
	} `yaml:"tls"`
	Embedded struct {
		Listen  string `yaml:"listen"`
		Cluster struct {
			Name   string   `yaml:"name"`
			Listen string   `yaml:"listen"`
			Routes []string `yaml:"routes"`
		} `yaml:"cluster"`
		StoreDir string `yaml:"store_dir"`
	} `yaml:"embedded"`
}

// apply sets the NATS settings. node is the nats: mapping, or nil.
func (f *fileNATS) apply(n *NATSSection, node *yaml.Node) error {
	n.Client = publish.NATSConfig{
		URL: f.URL, Name: f.Name, Creds: f.Creds, NKey: f.NKey, SubjectPrefix: f.SubjectPrefix,
		TLSCA: f.TLS.CA, TLSCert: f.TLS.Cert, TLSKey: f.TLS.Key,
	}
	if (f.TLS.Cert == "") != (f.TLS.Key == "") {
		return fmt.Errorf("line %d: nats.tls: cert and key must be set together", lineOf(node, "tls"))
	}
	emb := valueNode(node, "embedded")
	n.Embedded = EmbeddedNATS{
		Listen: f.Embedded.Listen, ClusterName: f.Embedded.Cluster.Name,
		ClusterListen: f.Embedded.Cluster.Listen, Routes: f.Embedded.Cluster.Routes,
		StoreDir: f.Embedded.StoreDir,
	}
	if addr := n.Embedded.Listen; addr != "" {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("line %d: nats.embedded.listen %q: want host:port", lineOf(emb, "listen"), addr)
		}
	}
	if n.Embedded.ClusterListen != "" {
		if _, _, err := net.SplitHostPort(n.Embedded.ClusterListen); err != nil {
			return fmt.Errorf("line %d: nats.embedded.cluster.listen %q: want host:port", lineOf(valueNode(emb, "cluster"), "listen"), n.Embedded.ClusterListen)
		}
		if n.Embedded.Listen == "" {
			return fmt.Errorf("line %d: nats.embedded.cluster needs nats.embedded.listen", lineOf(emb, "cluster"))
		}
	}
	return nil
}
