package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfigLimits(t *testing.T) {
	yamlText := `
backend_dial_timeout: 750ms
limits:
  max_client_conns: 1000
  max_header_bytes: 16KiB
  read_header_timeout: 5s
  idle_timeout: 1m
  max_request_body: 2 MB
  max_instruct_body: 65536
  max_channels: 30
  max_ws_message: 1mib
  read_body_timeout: 20s
  backend_queue_timeout: 2s
  max_links_without_hold: 50
  link_interval: 1s
  ws_message_timeout: 10s
  ws_partial_budget: 16MiB
`
	cfg, err := Parse([]byte(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	wantLimits := Limits{MaxClientConns: 1000, MaxHeaderBytes: 16 << 10, ReadHeaderTimeout: Duration(5 * time.Second),
		IdleTimeout: Duration(time.Minute), MaxRequestBody: 2000000, MaxInstructBody: 65536, MaxChannels: 30, MaxWSMessage: 1 << 20,
		ReadBodyTimeout: Duration(20 * time.Second), BackendQueueTimeout: Duration(2 * time.Second),
		MaxLinksWithoutHold: 50, LinkInterval: Duration(time.Second),
		WSMessageTimeout: Duration(10 * time.Second), WSPartialBudget: 16 << 20}
	if cfg.Limits != wantLimits {
		t.Errorf("Limits = %+v, want %+v", cfg.Limits, wantLimits)
	}
	if cfg.BackendDialTimeout.Std() != 750*time.Millisecond {
		t.Errorf("BackendDialTimeout = %v", cfg.BackendDialTimeout)
	}

	// A partial section keeps the other defaults.
	cfg, err = Parse([]byte("limits:\n  max_channels: 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Limits.MaxChannels = 7
	if cfg.Limits != want.Limits {
		t.Errorf("limits %+v, want %+v", cfg.Limits, want.Limits)
	}
}

func TestParseConfigLimitsErrors(t *testing.T) {
	tests := []struct {
		yaml    string
		wantErr string
	}{
		{"limits:\n  max_client_conns: 0\n", "line 2: limits.max_client_conns 0: must be at least 1"},
		{"limits:\n  max_client_conns: many\n", "line 2"},
		{"limits:\n  max_channels: -1\n", "line 2: limits.max_channels -1: must be at least 1"},
		{"listen: \":1\"\nlimits:\n  max_request_body: 10 MiBs\n", `line 3: limits.max_request_body "10 MiBs": want a number of bytes`},
		{"limits:\n  max_request_body: 0\n", `line 2: limits.max_request_body "0": must be from 1`},
		{"limits:\n  max_request_body: -5\n", `line 2: limits.max_request_body "-5": want a number of bytes`},
		{"limits:\n  max_instruct_body: 1.5KiB\n", `line 2: limits.max_instruct_body "1.5KiB"`},
		{"limits:\n  max_ws_message: 99999999999GiB\n", `line 2: limits.max_ws_message "99999999999GiB": too large`},
		{"limits:\n  max_header_bytes: 100\n", `line 2: limits.max_header_bytes "100": must be from 1024 to 67108864 bytes`},
		{"limits:\n  max_header_bytes: 1GiB\n", `line 2: limits.max_header_bytes "1GiB": must be from 1024`},
		{"limits:\n  read_header_timeout: 10\n", `line 2: limits.read_header_timeout "10": want a duration`},
		{"limits:\n  idle_timeout: 0s\n", `line 2: limits.idle_timeout "0s": must be more than zero`},
		{"limits:\n  max_conns: 5\n", `line 2: unknown key "max_conns" in limits`},
		{"limits: 5\n", "line 1"},
		{"backend_dial_timeout: soon\n", `line 1: backend_dial_timeout "soon": want a duration`},
		{"backend_dial_timeout: -1s\n", `line 1: backend_dial_timeout "-1s": must be more than zero`},
		{"routes:\n  - id: r\n    backends: [\"http://h\"]\n    auto_cross_origin: maybe\n", "line 4"},
	}
	for _, tt := range tests {
		cfg, err := Parse([]byte(tt.yaml))
		if err == nil {
			t.Errorf("Parse(%q) succeeded (%+v), want an error containing %q", tt.yaml, cfg, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Parse(%q) error %q, want it to contain %q", tt.yaml, err, tt.wantErr)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := map[string]int64{
		"0": 0, "1048576": 1 << 20, "64KiB": 64 << 10, "64 kib": 64 << 10, "10MiB": 10 << 20,
		"1GiB": 1 << 30, "2KB": 2000, "3MB": 3000000, "1gb": 1000000000, "512B": 512, " 7 ": 7,
	}
	for text, want := range tests {
		if got, err := parseSize(text); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", text, got, err, want)
		}
	}
	for _, bad := range []string{"", "KiB", "ten", "1.5MiB", "-1", "1TiB", "1e6"} {
		if got, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", bad, got)
		}
	}
}

func TestClientMaxConns(t *testing.T) {
	tests := []struct {
		configured int
		nofile     uint64
		want       int
	}{
		{configured: 10, nofile: 4, want: 10},   // a configured value is used as it is
		{configured: 0, nofile: 0, want: 50000}, // the limit is unknown
		{configured: 0, nofile: 1 << 20, want: 50000},
		{configured: 0, nofile: 4096, want: 2048},
		{configured: 0, nofile: 1, want: 1},
	}
	for _, tt := range tests {
		if got := ClientMaxConns(tt.configured, tt.nofile); got != tt.want {
			t.Errorf("ClientMaxConns(%d, %d) = %d, want %d", tt.configured, tt.nofile, got, tt.want)
		}
	}
}

// The listeners' default caps together leave descriptors for backends and
// NATS: a flood on the control API or the admin listener cannot starve the
// client listener, nor the other way round.
func TestListenerCapsReserveFileDescriptors(t *testing.T) {
	for _, nofile := range []uint64{256, 1024, 4096, 65536, 1 << 20} {
		client := ClientMaxConns(0, nofile)
		control := Control{}.ControlMaxConns(nofile)
		admin := Admin{}.AdminMaxConns(nofile)
		natsConns := EmbeddedNATSMaxConns(nofile)
		if total := uint64(client + control + admin + natsConns); total > nofile*3/4 {
			t.Errorf("nofile %d: caps client %d + control %d + admin %d = %d, more than three quarters", nofile, client, control, admin, total)
		}
		if control < 1 || admin < 1 {
			t.Errorf("nofile %d: control %d, admin %d", nofile, control, admin)
		}
	}
	if got := (Control{MaxConns: 5}).ControlMaxConns(64); got != 5 {
		t.Errorf("configured control.max_conns 5 gave %d", got)
	}
	if got := (Control{}).ControlMaxConns(1 << 20); got != DefaultControlMaxConns {
		t.Errorf("control default %d", got)
	}
	if got := (Admin{}).AdminMaxConns(1024); got != 64 {
		t.Errorf("admin default with nofile 1024: %d", got)
	}
}
