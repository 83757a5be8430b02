package grip

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseWSControl(t *testing.T) {
	// keepAlive is the keep-alive control with every default.
	keepAlive := func(edit func(*WSControl)) *WSControl {
		c := &WSControl{Type: "keep-alive", MessageType: "text", Timeout: DefaultKeepAliveTimeout, Mode: KeepAliveIdle}
		if edit != nil {
			edit(c)
		}
		return c
	}
	tests := []struct {
		name string
		json string
		want *WSControl
	}{
		// subscribe
		{"subscribe", `{"type":"subscribe","channel":"news"}`,
			&WSControl{Type: "subscribe", Channel: "news"}},
		{"subscribe with filters", `{"type":"subscribe","channel":"news","filters":["skip-self","skip-users"]}`,
			&WSControl{Type: "subscribe", Channel: "news", Filters: []string{"skip-self", "skip-users"}}},
		{"subscribe with no filters", `{"type":"subscribe","channel":"news","filters":[]}`,
			&WSControl{Type: "subscribe", Channel: "news", Filters: []string{}}},
		{"subscribe with null filters", `{"type":"subscribe","channel":"news","filters":null}`,
			&WSControl{Type: "subscribe", Channel: "news"}},
		{"subscribe with 5 filters", `{"type":"subscribe","channel":"c","filters":["a","b","c","d","e"]}`,
			&WSControl{Type: "subscribe", Channel: "c", Filters: []string{"a", "b", "c", "d", "e"}}},
		{"subscribe ignores other fields", `{"type":"subscribe","channel":"c","name":"n","id":"i","content":"x"}`,
			&WSControl{Type: "subscribe", Channel: "c"}},

		// unsubscribe
		{"unsubscribe", `{"type":"unsubscribe","channel":"news"}`,
			&WSControl{Type: "unsubscribe", Channel: "news"}},

		// detach
		{"detach", `{"type":"detach"}`, &WSControl{Type: "detach"}},
		{"detach ignores channel", `{"type":"detach","channel":"c"}`, &WSControl{Type: "detach"}},

		// set-meta
		{"set-meta with value", `{"type":"set-meta","name":"user","value":"alice"}`,
			&WSControl{Type: "set-meta", Name: "user", Value: "alice", HasValue: true}},
		{"set-meta with empty value", `{"type":"set-meta","name":"user","value":""}`,
			&WSControl{Type: "set-meta", Name: "user", Value: "", HasValue: true}},
		{"set-meta value omitted", `{"type":"set-meta","name":"user"}`,
			&WSControl{Type: "set-meta", Name: "user"}},
		{"set-meta value null", `{"type":"set-meta","name":"user","value":null}`,
			&WSControl{Type: "set-meta", Name: "user"}},

		// keep-alive
		{"keep-alive content", `{"type":"keep-alive","content":"ka"}`,
			keepAlive(func(c *WSControl) { c.Content = []byte("ka") })},
		{"keep-alive empty content", `{"type":"keep-alive","content":""}`,
			keepAlive(func(c *WSControl) { c.Content = []byte{} })},
		{"keep-alive content-bin", `{"type":"keep-alive","content-bin":"AP9rYQ=="}`,
			keepAlive(func(c *WSControl) { c.Content = []byte{0x00, 0xff, 'k', 'a'} })},
		{"keep-alive content wins over content-bin", `{"type":"keep-alive","content":"t","content-bin":"Yg=="}`,
			keepAlive(func(c *WSControl) { c.Content = []byte("t") })},
		{"keep-alive no content", `{"type":"keep-alive"}`, keepAlive(nil)},
		{"keep-alive null content", `{"type":"keep-alive","content":null}`, keepAlive(nil)},
		{"keep-alive message-type text", `{"type":"keep-alive","content":"x","message-type":"text"}`,
			keepAlive(func(c *WSControl) { c.Content = []byte("x") })},
		{"keep-alive message-type binary", `{"type":"keep-alive","content":"x","message-type":"binary"}`,
			keepAlive(func(c *WSControl) { c.Content, c.MessageType = []byte("x"), "binary" })},
		{"keep-alive message-type ping", `{"type":"keep-alive","content":"x","message-type":"ping"}`,
			keepAlive(func(c *WSControl) { c.Content, c.MessageType = []byte("x"), "ping" })},
		{"keep-alive message-type pong", `{"type":"keep-alive","content":"x","message-type":"pong"}`,
			keepAlive(func(c *WSControl) { c.Content, c.MessageType = []byte("x"), "pong" })},
		{"keep-alive timeout", `{"type":"keep-alive","content":"x","timeout":30}`,
			keepAlive(func(c *WSControl) { c.Content, c.Timeout = []byte("x"), 30*time.Second })},
		{"keep-alive timeout 1", `{"type":"keep-alive","content":"x","timeout":1}`,
			keepAlive(func(c *WSControl) { c.Content, c.Timeout = []byte("x"), time.Second })},
		{"keep-alive timeout capped at a day", `{"type":"keep-alive","content":"x","timeout":9999999999}`,
			keepAlive(func(c *WSControl) { c.Content, c.Timeout = []byte("x"), 24*time.Hour })},
		{"keep-alive timeout null", `{"type":"keep-alive","content":"x","timeout":null}`,
			keepAlive(func(c *WSControl) { c.Content = []byte("x") })},
		{"keep-alive mode idle", `{"type":"keep-alive","content":"x","mode":"idle"}`,
			keepAlive(func(c *WSControl) { c.Content = []byte("x") })},
		{"keep-alive mode interval", `{"type":"keep-alive","content":"x","mode":"interval"}`,
			keepAlive(func(c *WSControl) { c.Content, c.Mode = []byte("x"), KeepAliveInterval })},
		{"keep-alive everything", `{"type":"keep-alive","content-bin":"aGk=","message-type":"ping","timeout":20,"mode":"interval"}`,
			&WSControl{Type: "keep-alive", Content: []byte("hi"), MessageType: "ping", Timeout: 20 * time.Second, Mode: KeepAliveInterval}},

		// session
		{"session", `{"type":"session","id":"s-1"}`, &WSControl{Type: "session", ID: "s-1"}},
		{"session without id", `{"type":"session"}`, &WSControl{Type: "session"}},

		// Types gripd does not act on are accepted with their type kept.
		{"send-delayed", `{"type":"send-delayed","content":"x","timeout":1}`, &WSControl{Type: "send-delayed"}},
		{"flush-delayed", `{"type":"flush-delayed"}`, &WSControl{Type: "flush-delayed"}},
		{"unknown type", `{"type":"frobnicate","channel":"c"}`, &WSControl{Type: "frobnicate"}},
		{"ack", `{"type":"ack","id":"1"}`, &WSControl{Type: "ack"}},
		{"unknown fields", `{"type":"detach","extra":{"a":[1,2]}}`, &WSControl{Type: "detach"}},
		{"surrounding space", " \n{\"type\":\"detach\"}\t", &WSControl{Type: "detach"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWSControl([]byte(tc.json))
			if err != nil {
				t.Fatalf("ParseWSControl(%s): %v", tc.json, err)
			}
			// DeepEqual tells nil Content/Filters from empty ones.
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseWSControl(%s)\n got %#v\nwant %#v", tc.json, got, tc.want)
			}
		})
	}
}

func TestParseWSControlErrors(t *testing.T) {
	tests := []struct {
		name string
		json string
		want string // part of the error text
	}{
		{"not JSON", `c:{"type":"detach"}`, "not a JSON object"},
		{"empty", ``, "not a JSON object"},
		{"cut short", `{"type":"detach"`, "not a JSON object"},
		{"array", `[{"type":"detach"}]`, "not a JSON object"},
		{"string", `"detach"`, "not a JSON object"},
		{"trailing garbage", `{"type":"detach"} x`, "not a JSON object"},
		{"type not a string", `{"type":5}`, "not a JSON object"},
		{"no type", `{"channel":"c"}`, "without a type"},
		{"empty type", `{"type":""}`, "without a type"},
		{"null type", `{"type":null}`, "without a type"},
		{"null", `null`, "without a type"},
		{"empty object", `{}`, "without a type"},

		{"subscribe without channel", `{"type":"subscribe"}`, "subscribe without a channel"},
		{"subscribe empty channel", `{"type":"subscribe","channel":""}`, "subscribe without a channel"},
		{"subscribe null channel", `{"type":"subscribe","channel":null}`, "subscribe without a channel"},
		{"subscribe channel not a string", `{"type":"subscribe","channel":1}`, "not a JSON object"},
		{"subscribe 6 filters", `{"type":"subscribe","channel":"c","filters":["a","b","c","d","e","f"]}`, "6 filters, at most 5"},
		{"subscribe filters not strings", `{"type":"subscribe","channel":"c","filters":[1]}`, "not a JSON object"},
		{"unsubscribe without channel", `{"type":"unsubscribe"}`, "unsubscribe without a channel"},

		{"set-meta without name", `{"type":"set-meta","value":"v"}`, "set-meta without a name"},
		{"set-meta empty name", `{"type":"set-meta","name":"","value":"v"}`, "set-meta without a name"},
		{"set-meta value not a string", `{"type":"set-meta","name":"n","value":1}`, "not a JSON object"},

		{"keep-alive bad content-bin", `{"type":"keep-alive","content-bin":"!!"}`, "content-bin"},
		{"keep-alive bad message-type", `{"type":"keep-alive","content":"x","message-type":"close"}`, `unknown message-type "close"`},
		{"keep-alive upper-case message-type", `{"type":"keep-alive","content":"x","message-type":"TEXT"}`, "unknown message-type"},
		{"keep-alive timeout 0", `{"type":"keep-alive","content":"x","timeout":0}`, "timeout 0 is not positive"},
		{"keep-alive negative timeout", `{"type":"keep-alive","content":"x","timeout":-5}`, "timeout -5 is not positive"},
		{"keep-alive fractional timeout", `{"type":"keep-alive","content":"x","timeout":1.5}`, "not a JSON object"},
		{"keep-alive timeout a string", `{"type":"keep-alive","content":"x","timeout":"30"}`, "not a JSON object"},
		{"keep-alive bad mode", `{"type":"keep-alive","content":"x","mode":"sometimes"}`, `unknown mode "sometimes"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWSControl([]byte(tc.json))
			if err == nil {
				t.Fatalf("ParseWSControl(%s) = %#v, want an error", tc.json, got)
			}
			if got != nil {
				t.Errorf("ParseWSControl(%s) returned %#v with its error", tc.json, got)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseWSControl(%s) error %q, want it to contain %q", tc.json, err, tc.want)
			}
		})
	}
}
