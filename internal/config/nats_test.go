package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestNATSSection(t *testing.T) {
	cfg, err := Parse([]byte(`
nats:
  url: nats://a:4222,nats://b:4222
  name: edge-1
  subject_prefix: edge
  tls: {ca: ca.pem, cert: c.pem, key: k.pem}
  embedded:
    listen: 127.0.0.1:4222
    cluster: {name: fleet, listen: 127.0.0.1:6222, routes: [nats://127.0.0.1:6223]}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := NATS{
		URL: "nats://a:4222,nats://b:4222", Name: "edge-1", SubjectPrefix: "edge",
		TLS: NATSTLS{CA: "ca.pem", Cert: "c.pem", Key: "k.pem"},
		Embedded: EmbeddedNATS{Listen: "127.0.0.1:4222",
			Cluster: NATSCluster{Name: "fleet", Listen: "127.0.0.1:6222", Routes: []string{"nats://127.0.0.1:6223"}}},
	}
	if !reflect.DeepEqual(cfg.NATS, want) {
		t.Fatalf("got %+v\nwant %+v", cfg.NATS, want)
	}
}

// Users of the embedded server: a publisher by default, nkeys or user and
// password, passwords read as keys (file:, base64:).
func TestNATSEmbeddedUsers(t *testing.T) {
	cfg, err := Parse([]byte(`
nats:
  user: gripd
  password: "base64:c2VjcmV0"
  embedded:
    listen: 0.0.0.0:4222
    users:
      - {user: backend, password: pw}
      - {nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4, role: system}
      - {user: gripd-2, password: pw2, role: instance}
    cluster: {listen: 0.0.0.0:6222, user: route, password: rpw, tls: {cert: c, key: k, ca: ca}}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []NATSUser{
		{User: "backend", Password: Key("pw"), Role: RolePublisher},
		{NKey: "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4", Role: RoleSystem},
		{User: "gripd-2", Password: Key("pw2"), Role: RoleInstance},
	}
	if !reflect.DeepEqual(cfg.NATS.Embedded.Users, want) {
		t.Fatalf("users %+v\nwant %+v", cfg.NATS.Embedded.Users, want)
	}
	if c := cfg.NATS.Client(); c.User != "gripd" || c.Password != "secret" {
		t.Fatalf("client credentials %q/%q", c.User, c.Password)
	}
	if cl := cfg.NATS.Embedded.Cluster; cl.User != "route" || string(cl.Password) != "rpw" || cl.TLS.CA != "ca" {
		t.Fatalf("cluster %+v", cl)
	}
}

func TestNATSSectionErrors(t *testing.T) {
	cases := map[string]string{
		"nats:\n  embedded:\n    listen: nope\n":                                 "line 3: nats.embedded.listen",
		"nats:\n  tls: {cert: c.pem}\n":                                          "line 2: nats.tls: cert and key",
		"nats:\n  embedded:\n    cluster: {listen: 127.0.0.1:6222}\n":            "nats.embedded.cluster needs nats.embedded.listen",
		"nats:\n  urls: x\n":                                                     "line 2",
		"nats:\n  user: u\n":                                                     "user and password must be set together",
		"nats:\n  user: u\n  password: p\n  token: t\n":                          "line 4: nats: token and user",
		"nats:\n  embedded:\n    users: [{user: u}]\n":                           "user \"u\" needs a password",
		"nats:\n  embedded:\n    users: [{password: p}]\n":                       "needs user and password, or nkey",
		"nats:\n  embedded:\n    users: [{nkey: SUABC}]\n":                       "not a user's public nkey",
		"nats:\n  embedded:\n    users: [{user: u, password: p, role: admin}]\n": "role \"admin\"",
		"nats:\n  embedded:\n    tls: {cert: c, key: k, verify: true}\n":         "verify needs ca",
		"nats:\n  embedded:\n    cluster: {tls: {cert: c, key: k}}\n":            "cert, key and ca must be set together",
		"nats:\n  embedded:\n    cluster: {user: r}\n":                           "nats.embedded.cluster: user and password",
	}
	for yaml, want := range cases {
		_, err := Parse([]byte(yaml))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to mention %q", yaml, err, want)
		}
	}
}
