package config

import (
	"fmt"

	"github.com/nats-io/nkeys"
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
	// User and Password log in with a user name and password (a Key:
	// "file:PATH" reads it from a file); set both.
	User     string `yaml:"user"`
	Password Key    `yaml:"password"`
	// Token logs in with a token (a Key). Not with User.
	Token Key `yaml:"token"`
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

func (n *NATS) check(node *yaml.Node) error {
	if (n.User == "") != (len(n.Password) == 0) {
		return fmt.Errorf("line %d: nats: user and password must be set together", nodeLine(node))
	}
	if len(n.Token) > 0 && n.User != "" {
		return fmt.Errorf("line %d: nats: token and user are two ways to log in; set one", lineOf(node, "token"))
	}
	return nil
}

// Client is the connection as package publish takes it (URL may still be
// empty: the daemon fills in the embedded server's).
func (n NATS) Client() publish.NATSConfig {
	return publish.NATSConfig{
		URL: n.URL, Name: n.Name, Creds: n.Creds, NKey: n.NKey, SubjectPrefix: n.SubjectPrefix,
		User: n.User, Password: string(n.Password), Token: string(n.Token),
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
	// Users are who may connect to the client port. With none, anyone who
	// reaches the port may publish to and read every channel (gripd warns
	// at start when it listens beyond loopback). gripd's own connection
	// does not need one. Default none.
	Users []NATSUser `yaml:"users"`
	// TLS is the client port's certificate; with Verify, clients must
	// present a certificate signed by CA.
	TLS NATSServerTLS `yaml:"tls"`
}

func (e *EmbeddedNATS) check(node *yaml.Node) error {
	if e.Cluster.Listen != "" && e.Listen == "" {
		return fmt.Errorf("line %d: nats.embedded.cluster needs nats.embedded.listen", lineOf(node, "cluster"))
	}
	return nil
}

// NATS user roles (nats.embedded.users[].role).
const (
	// RolePublisher may publish whole bodies (<prefix>.publish) and items
	// (<prefix>.ch.>), and subscribe to _INBOX.> for the answers: it
	// cannot read any channel.
	RolePublisher = "publisher"
	// RoleInstance is another gripd (nats.url pointing here): it may do
	// everything gripd does.
	RoleInstance = "instance"
	// RoleSystem is in the server's system account, for `nats server ...`
	// tooling; it sees no channel.
	RoleSystem = "system"
)

// NATSUser is one entry of nats.embedded.users: a user name and password,
// or an nkey, and what the user may do.
type NATSUser struct {
	// User is the user name; set with Password.
	User string `yaml:"user"`
	// Password is the user's password (a Key: "file:PATH" reads it).
	Password Key `yaml:"password"`
	// NKey is the user's public nkey (U...), instead of User and Password.
	NKey string `yaml:"nkey"`
	// Role is publisher, instance or system. Default publisher.
	Role string `yaml:"role"`
}

func (u *NATSUser) check(node *yaml.Node) error {
	switch {
	case u.NKey == "" && u.User == "":
		return fmt.Errorf("line %d: nats.embedded.users: each user needs user and password, or nkey", nodeLine(node))
	case u.NKey != "" && u.User != "":
		return fmt.Errorf("line %d: nats.embedded.users: set user and password, or nkey, not both", nodeLine(node))
	case u.User != "" && len(u.Password) == 0:
		return fmt.Errorf("line %d: nats.embedded.users: user %q needs a password", nodeLine(node), u.User)
	case u.NKey != "" && !nkeys.IsValidPublicUserKey(u.NKey):
		return fmt.Errorf("line %d: nats.embedded.users: nkey %q is not a user's public nkey (U...)", lineOf(node, "nkey"), u.NKey)
	}
	switch u.Role {
	case "":
		u.Role = RolePublisher
	case RolePublisher, RoleInstance, RoleSystem:
	default:
		return fmt.Errorf("line %d: nats.embedded.users: role %q: want publisher, instance or system", lineOf(node, "role"), u.Role)
	}
	return nil
}

// NATSServerTLS is the TLS of one of the embedded server's ports: its
// certificate and key, and the CA client (or route) certificates must be
// signed by when Verify is on.
type NATSServerTLS struct {
	// Cert and Key are the server's certificate and key files; set both.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// CA is the CA file that peers' certificates are checked against.
	CA string `yaml:"ca"`
	// Verify requires clients to present a certificate signed by CA.
	// Default false.
	Verify bool `yaml:"verify"`
}

func (t *NATSServerTLS) check(node *yaml.Node) error {
	if (t.Cert == "") != (t.Key == "") {
		return fmt.Errorf("line %d: nats.embedded.tls: cert and key must be set together", nodeLine(node))
	}
	if t.Cert == "" && (t.CA != "" || t.Verify) {
		return fmt.Errorf("line %d: nats.embedded.tls: ca and verify need cert and key", nodeLine(node))
	}
	if t.Verify && t.CA == "" {
		return fmt.Errorf("line %d: nats.embedded.tls.verify needs ca", lineOf(node, "verify"))
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
	// User and Password are what routes between the embedded servers
	// must present (every server of the cluster has the same); they are
	// added to Routes' URLs that carry none. Default none: any server
	// that reaches Listen may join.
	User     string `yaml:"user"`
	Password Key    `yaml:"password"`
	// TLS is the route port's certificate; routes then use TLS both ways
	// and each server verifies the other's certificate against CA.
	TLS NATSRouteTLS `yaml:"tls"`
}

// NATSRouteTLS is nats.embedded.cluster.tls: this server's certificate
// and key, and the CA every server's certificate is checked against.
type NATSRouteTLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	CA   string `yaml:"ca"`
}

func (t *NATSRouteTLS) check(node *yaml.Node) error {
	if (t.Cert == "") != (t.Key == "") || (t.Cert == "") != (t.CA == "") {
		return fmt.Errorf("line %d: nats.embedded.cluster.tls: cert, key and ca must be set together", nodeLine(node))
	}
	return nil
}

func (c *NATSCluster) check(node *yaml.Node) error {
	if (c.User == "") != (len(c.Password) == 0) {
		return fmt.Errorf("line %d: nats.embedded.cluster: user and password must be set together", nodeLine(node))
	}
	return nil
}
