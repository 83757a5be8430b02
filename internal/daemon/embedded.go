package daemon

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"

	"github.com/gripd/gripd/internal/config"
	"github.com/gripd/gripd/publish"
)

// embeddedSystemAccount is the embedded server's system account, where
// users with role system land (for `nats server ...` tooling). Every
// other user is in the global account, with the channels.
const embeddedSystemAccount = "SYS"

// embeddedAuthTimeout is how many seconds a client has to log in, as
// nats-server's default.
const embeddedAuthTimeout = 2

// embeddedNATS is a started embedded server and how this instance's own
// connection reaches it: in process, with a user made up at start when
// the server requires one.
type embeddedNATS struct {
	server         *server.Server
	user, password string
}

// startEmbeddedNATS starts the NATS server of an instance that embeds one.
// prefix is the subject prefix the permissions are written for. With
// jetStream (for history) it keeps its streams in storeDir. run starts the
// server's start-up goroutine (the daemon's group).
func startEmbeddedNATS(cfg config.EmbeddedNATS, prefix string, jetStream bool, storeDir string, log zerolog.Logger, run func(func() error)) (*embeddedNATS, error) {
	opts, self, err := embeddedOptions(cfg, prefix)
	if err != nil {
		return nil, err
	}
	if jetStream { // for history (history.go)
		opts.JetStream, opts.StoreDir = true, storeDir
		// JetStream in a cluster tells its servers apart by name.
		opts.ServerName = "gripd-" + string(cfg.Listen)
	}
	warnOpenEmbedded(cfg, log)
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	run(func() error { s.Start(); return nil })
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded NATS on %s not ready after 10 s", cfg.Listen)
	}
	e := &embeddedNATS{server: s}
	if self != nil {
		e.user, e.password = self.Username, self.Password
	}
	return e, nil
}

// embeddedOptions turns nats.embedded into the server's options. self is
// the user this instance's own connection logs in with (nil when the
// server has no users).
func embeddedOptions(cfg config.EmbeddedNATS, prefix string) (opts *server.Options, self *server.User, _ error) {
	host, port, err := splitHostPort(string(cfg.Listen))
	if err != nil {
		return nil, nil, fmt.Errorf("embedded NATS listen %q: %w", cfg.Listen, err)
	}
	// max_payload is the publish-body limit: a message on <prefix>.publish
	// is a publish body, one on <prefix>.ch.> a single item of one, and
	// NATS refuses bigger ones before they reach any instance. Twice the
	// limit leaves room for an item re-encoded by gripd (JSON escapes).
	opts = &server.Options{Host: host, Port: port, NoSigs: true, NoLog: true, MaxPayload: 2 * publish.DefaultMaxBodyBytes,
		MaxConn: config.EmbeddedNATSMaxConns(openFileLimit())}
	if err := embeddedAuth(opts, cfg.Users, prefix); err != nil {
		return nil, nil, err
	}
	if len(cfg.Users) > 0 {
		self = &server.User{Username: "gripd-self-" + randomHex(8), Password: randomHex(32)}
		opts.Users = append(opts.Users, self) // global account, no limits
	}
	if t := cfg.TLS; t.Cert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: t.Cert, KeyFile: t.Key, CaFile: t.CA, Verify: t.Verify})
		if err != nil {
			return nil, nil, fmt.Errorf("nats.embedded.tls: %w", err)
		}
		opts.TLSConfig, opts.TLSVerify, opts.TLSTimeout = tc, t.Verify, 2
	}
	if cl := cfg.Cluster; cl.Listen != "" {
		chost, cport, err := splitHostPort(string(cl.Listen))
		if err != nil {
			return nil, nil, fmt.Errorf("embedded NATS cluster listen %q: %w", cl.Listen, err)
		}
		name := cl.Name
		if name == "" {
			name = "gripd"
		}
		opts.Cluster = server.ClusterOpts{Name: name, Host: chost, Port: cport, Username: cl.User, Password: string(cl.Password)}
		if t := cl.TLS; t.Cert != "" {
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: t.Cert, KeyFile: t.Key, CaFile: t.CA, Verify: true})
			if err != nil {
				return nil, nil, fmt.Errorf("nats.embedded.cluster.tls: %w", err)
			}
			// A route is a client of the other server too: it checks that
			// server's certificate against the same CA, as nats-server's
			// own configuration does.
			tc.ClientAuth, tc.RootCAs = tls.RequireAndVerifyClientCert, tc.ClientCAs
			opts.Cluster.TLSConfig, opts.Cluster.TLSTimeout = tc, 2
		}
		for _, r := range cl.Routes {
			for _, u := range server.RoutesFromStr(r) {
				if u.User == nil && cl.User != "" {
					u.User = url.UserPassword(cl.User, string(cl.Password))
				}
				opts.Routes = append(opts.Routes, u)
			}
		}
	}
	return opts, self, nil
}

// embeddedAuth adds nats.embedded.users to opts: publishers may only
// publish bodies and items (and read the answers), instances everything,
// system users are in the system account.
func embeddedAuth(opts *server.Options, users []config.NATSUser, prefix string) error {
	if len(users) == 0 {
		return nil
	}
	// An authorization block in a config file tells nats-server that
	// auth is deliberate: without one, a server whose only accounts are
	// the global and the system account lets clients without credentials
	// into the global account (a convenience for adding system users),
	// which here would be every channel.
	if err := opts.ProcessConfigString(fmt.Sprintf("authorization { timeout: %d }", embeddedAuthTimeout)); err != nil {
		return fmt.Errorf("embedded NATS auth: %w", err)
	}
	sys := server.NewAccount(embeddedSystemAccount)
	opts.Accounts, opts.SystemAccount = []*server.Account{sys}, embeddedSystemAccount
	seen := map[string]bool{}
	for _, u := range users {
		name := u.User + u.NKey
		if seen[name] {
			return fmt.Errorf("nats.embedded.users: %s is listed twice", name)
		}
		seen[name] = true
		var perms *server.Permissions
		var acc *server.Account
		switch u.Role {
		case config.RolePublisher, "":
			perms = publisherPermissions(prefix)
		case config.RoleSystem:
			acc = sys
		}
		if u.NKey != "" {
			opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: u.NKey, Permissions: perms, Account: acc})
		} else {
			opts.Users = append(opts.Users, &server.User{Username: u.User, Password: string(u.Password), Permissions: perms, Account: acc})
		}
	}
	return nil
}

// publisherPermissions lets a publisher send publish bodies and items
// and get the answers to its requests, and nothing else: it reads no
// channel, lists none, and cannot ask for a recover.
func publisherPermissions(prefix string) *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{publish.PublishSubject(prefix), publish.AllChannelsSubject(prefix)}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// warnOpenEmbedded says loudly when the embedded server's ports can be
// reached from beyond this host with no credentials asked.
func warnOpenEmbedded(cfg config.EmbeddedNATS, log zerolog.Logger) {
	if len(cfg.Users) == 0 && !loopbackOnly(string(cfg.Listen)) {
		log.Error().Str("listen", string(cfg.Listen)).
			Msg("SECURITY: the embedded NATS server listens beyond loopback WITHOUT AUTHENTICATION: anyone who reaches it can publish to and read every channel; set nats.embedded.users (see docs/security.md)")
	}
	if cl := cfg.Cluster; cl.Listen != "" && cl.User == "" && cl.TLS.Cert == "" && !loopbackOnly(string(cl.Listen)) {
		log.Error().Str("listen", string(cl.Listen)).
			Msg("SECURITY: the embedded NATS cluster port listens beyond loopback WITHOUT AUTHENTICATION: any server that reaches it joins the fleet; set nats.embedded.cluster.user and password, or tls (see docs/security.md)")
	}
}

// loopbackOnly reports whether a listen address is on loopback only (an
// empty host or 0.0.0.0 listens everywhere).
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func splitHostPort(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", 0, fmt.Errorf("bad port %q", portStr)
	}
	return host, port, nil
}

// randomHex is n random bytes in hex, for the credentials of this
// instance's own connection: made at start, never written anywhere.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
