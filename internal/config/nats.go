package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/gripd/gripd/publish"
)

// NATS is the nats: section: how this instance joins a fleet. With no URL
// and no embedded server, gripd runs alone with the local broker. Every
// key needs a restart.
type NATS struct {
	// URL is the NATS server URL(s), comma-separated (flag --nats).
	URL string `yaml:"url"`
	// Name is the connection name NATS monitoring shows. Default
	// publish's ("gripd").
	Name string `yaml:"name"`
	// Creds is a credentials file (JWT and seed).
	Creds string `yaml:"creds"`
	// NKey is an nkey seed file.
	NKey string `yaml:"nkey"`
	// SubjectPrefix is the first token of every subject gripd uses.
	// Default publish's ("gripd").
	SubjectPrefix string `yaml:"subject_prefix"`
	// TLS is the connection's TLS files.
	TLS NATSTLS `yaml:"tls"`
	// Embedded runs a NATS server inside gripd, so a few instances can
	// form a fleet with nothing else installed.
	Embedded EmbeddedNATS `yaml:"embedded"`
}

// NATSTLS is nats.tls: the CA to trust and the client certificate and
// key (set together).
type NATSTLS struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

func (t *NATSTLS) check(node *yaml.Node) error {
	if (t.Cert == "") != (t.Key == "") {
		return fmt.Errorf("line %d: nats.tls: cert and key must be set together", nodeLine(node))
	}
	return nil
}

// Client is the connection as package publish takes it (URL may still be
// empty: the daemon fills in the embedded server's).
func (n NATS) Client() publish.NATSConfig {
	return publish.NATSConfig{
		URL: n.URL, Name: n.Name, Creds: n.Creds, NKey: n.NKey, SubjectPrefix: n.SubjectPrefix,
		TLSCA: n.TLS.CA, TLSCert: n.TLS.Cert, TLSKey: n.TLS.Key,
	}
}

// EmbeddedNATS is nats.embedded: a NATS server run inside gripd.
type EmbeddedNATS struct {
	// Listen is the embedded server's client address, e.g.
	// "127.0.0.1:4222" (flag --nats-embedded). Default none (no server).
	Listen Address `yaml:"listen"`
	// Cluster joins the embedded servers of several instances.
	Cluster NATSCluster `yaml:"cluster"`
	// StoreDir is where the embedded server's JetStream keeps history (it
	// runs JetStream only when history is enabled). Default: a new
	// temporary directory, removed when gripd exits.
	StoreDir string `yaml:"store_dir"`
}

func (e *EmbeddedNATS) check(node *yaml.Node) error {
	if e.Cluster.Listen != "" && e.Listen == "" {
		return fmt.Errorf("line %d: nats.embedded.cluster needs nats.embedded.listen", lineOf(node, "cluster"))
	}
	return nil
}

// NATSCluster is nats.embedded.cluster: each embedded server listens for
// routes on Listen and connects to the others' Routes.
type NATSCluster struct {
	// Name is the cluster's name.
	Name string `yaml:"name"`
	// Listen is the address for routes from the other servers.
	Listen Address `yaml:"listen"`
	// Routes are the other servers' route URLs, nats://host:port.
	Routes []string `yaml:"routes"`
}
