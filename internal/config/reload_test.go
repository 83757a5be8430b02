package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gripd/gripd/proxy"
	"github.com/gripd/gripd/publish"
)

// Every key of Config is live or restart-only. A key added without a
// class fails here, naming it: add it to classify.
func TestEveryKeyHasAReloadClass(t *testing.T) {
	cfg := Default()
	var keys []string
	walkKeys(reflect.ValueOf(cfg).Elem(), reflect.ValueOf(cfg).Elem(), "", func(key string, _, _ reflect.Value) {
		keys = append(keys, key)
		if _, ok := classify(key); !ok {
			t.Errorf("%s has no reload class: add it to classify (reload.go), live with the function that applies it, or restart-only", key)
		}
	})
	if !slices.Contains(keys, "nats.embedded.cluster.routes") || !slices.Contains(keys, "routes") || len(keys) < 40 {
		t.Fatalf("the walk found %d keys (%v); it is broken", len(keys), keys)
	}
}

// fakeTarget records what a reload applies.
type fakeTarget struct{ calls []string }

func (f *fakeTarget) SetTable(*proxy.Table)               { f.calls = append(f.calls, "table") }
func (f *fakeTarget) SetSigning(string, []byte)           { f.calls = append(f.calls, "signing") }
func (f *fakeTarget) SetBackendLimits(time.Duration, int) { f.calls = append(f.calls, "backend") }
func (f *fakeTarget) SetLimits(proxy.Limits)              { f.calls = append(f.calls, "limits") }
func (f *fakeTarget) SetQueueSize(int)                    { f.calls = append(f.calls, "queue") }
func (f *fakeTarget) SetControlAuth(publish.Auth)         { f.calls = append(f.calls, "auth") }
func (f *fakeTarget) SetMaxDeliveryLag(time.Duration)     { f.calls = append(f.calls, "lag") }
func (f *fakeTarget) SetControlBodyTimeout(time.Duration) { f.calls = append(f.calls, "body_timeout") }

func TestApply(t *testing.T) {
	running, err := Parse([]byte("routes: [{backends: [\"http://a\"]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	next, err := Parse([]byte(`
listen: ":8000"
limits: {max_channels: 5, max_ws_message: 10, idle_timeout: 1s}
signing: {key: k}
drain: {duration: 1s}
nats: {url: "nats://x:4222"}
routes: [{backends: ["http://b"]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	var target fakeTarget
	restart, err := Apply(&target, running, next)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"listen", "nats.url", "limits.idle_timeout"}; !sameSet(restart, want) {
		t.Errorf("restart needed for %v, want %v", restart, want)
	}
	if want := []string{"signing", "table", "limits"}; !sameSet(target.calls, want) {
		t.Errorf("applied %v, want each of %v once", target.calls, want)
	}
	// Restart-only keys keep their running values; live ones take the new.
	if next.Listen != running.Listen || next.NATS.URL != "" || next.Limits.IdleTimeout != running.Limits.IdleTimeout {
		t.Errorf("restart-only keys not kept: listen %q, nats.url %q, idle %v", next.Listen, next.NATS.URL, next.Limits.IdleTimeout)
	}
	if next.Limits.MaxChannels != 5 || next.Drain.Duration.Std() != time.Second {
		t.Errorf("live keys lost: %+v %v", next.Limits, next.Drain.Duration)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// docs/operations.md's reload table says which keys change live and which
// need a restart; it must agree with classify. A key is covered by its
// own row entry or by its section's ("nats" covers nats.url).
func TestOperationsDocReloadTable(t *testing.T) {
	data, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `routes`.*$").FindString(string(data))
	cells := strings.Split(row, "|")
	if len(cells) < 3 {
		t.Fatalf("docs/operations.md has no reload table row starting with `routes`")
	}
	name := regexp.MustCompile("`([a-z_.]+)`")
	listed := func(cell string) map[string]bool {
		keys := map[string]bool{}
		for _, m := range name.FindAllStringSubmatch(cell, -1) {
			keys[m[1]] = true
		}
		return keys
	}
	liveCol, restartCol := listed(cells[1]), listed(cells[2])
	covered := func(col map[string]bool, key string) bool {
		for k := key; ; {
			if col[k] {
				return true
			}
			i := strings.LastIndex(k, ".")
			if i < 0 {
				return false
			}
			k = k[:i]
		}
	}
	cfg := Default()
	walkKeys(reflect.ValueOf(cfg).Elem(), reflect.ValueOf(cfg).Elem(), "", func(key string, _, _ reflect.Value) {
		s, _ := classify(key)
		want, other, class := liveCol, restartCol, "changes live"
		if s.restart {
			want, other, class = restartCol, liveCol, "needs a restart"
		}
		if !covered(want, key) || covered(other, key) {
			t.Errorf("docs/operations.md's reload table: %s belongs in the %q column only", key, class)
		}
	})
}
