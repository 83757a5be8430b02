package config

import (
	"strings"
	"testing"
	"time"
)

func TestHistorySection(t *testing.T) {
	cfg, err := Parse([]byte("listen: :7999\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.History != (History{MaxAge: Duration(time.Hour), MaxItemsPerChannel: 1000, DuplicateWindow: Duration(2 * time.Minute)}) {
		t.Fatalf("defaults %+v", cfg.History)
	}
	cfg, err = Parse([]byte(`
history:
  enabled: true
  max_age: 30m
  max_items_per_channel: 50
  duplicate_window: 10s
nats:
  embedded: {listen: "127.0.0.1:4222", store_dir: /var/lib/gripd/nats}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := History{Enabled: true, MaxAge: Duration(30 * time.Minute), MaxItemsPerChannel: 50, DuplicateWindow: Duration(10 * time.Second)}
	if cfg.History != want || cfg.NATS.Embedded.StoreDir != "/var/lib/gripd/nats" {
		t.Fatalf("got %+v, store dir %q", cfg.History, cfg.NATS.Embedded.StoreDir)
	}
	cfg, err = Parse([]byte("history: {enabled: true, max_age: 30s}\n"))
	if err != nil || cfg.History.DuplicateWindow.Std() != 30*time.Second {
		t.Fatalf("a max_age shorter than the default window: %+v %v", cfg.History, err)
	}
}

func TestHistorySectionErrors(t *testing.T) {
	cases := map[string]string{
		"history:\n  max_age: soon\n":                              "line 2: history.max_age",
		"history:\n  max_age: -1h\n":                               "line 2: history.max_age",
		"history:\n  max_items_per_channel: 0\n":                   "line 2: history.max_items_per_channel 0",
		"history:\n  duplicate_window: 1y\n":                       "line 2: history.duplicate_window",
		"history:\n  max_age: 1m\n  duplicate_window: 5m\n":        "line 3: history.duplicate_window 5m0s: must not be longer than max_age",
		"history:\n  enable: true\n":                               `unknown key "enable" in history`,
		"history:\n  enabled: true\n  max_items_per_channel: x\n":  "line 3",
		"nats:\n  embedded:\n    listen: 127.0.0.1:1\n    sd: x\n": `unknown key "sd"`,
	}
	for yaml, want := range cases {
		_, err := Parse([]byte(yaml))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to mention %q", yaml, err, want)
		}
	}
}

func TestAdminSection(t *testing.T) {
	for yaml, want := range map[string]string{
		"":                                    DefaultAdminListen,
		"admin: {}\n":                         DefaultAdminListen,
		"admin: {listen: \"0.0.0.0:9100\"}\n": "0.0.0.0:9100",
		"admin: {listen: off}\n":              "",
		"admin: {listen: \"\"}\n":             "",
	} {
		cfg, err := Parse([]byte(yaml))
		if err != nil {
			t.Errorf("%q: %v", yaml, err)
			continue
		}
		if cfg.Admin.Listen != OptionalAddress(want) {
			t.Errorf("%q: admin listen %q, want %q", yaml, cfg.Admin.Listen, want)
		}
	}
	for yaml, want := range map[string]string{
		"admin:\n  listen: nope\n": "line 2: admin.listen",
		"admin:\n  port: 1\n":      `line 2: unknown key "port" in admin`,
	} {
		if _, err := Parse([]byte(yaml)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to mention %q", yaml, err, want)
		}
	}
}
