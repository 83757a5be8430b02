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

func TestNATSSectionErrors(t *testing.T) {
	cases := map[string]string{
		"nats:\n  embedded:\n    listen: nope\n":                      "line 3: nats.embedded.listen",
		"nats:\n  tls: {cert: c.pem}\n":                               "line 2: nats.tls: cert and key",
		"nats:\n  embedded:\n    cluster: {listen: 127.0.0.1:6222}\n": "nats.embedded.cluster needs nats.embedded.listen",
		"nats:\n  urls: x\n":                                          "line 2",
	}
	for yaml, want := range cases {
		_, err := Parse([]byte(yaml))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to mention %q", yaml, err, want)
		}
	}
}
