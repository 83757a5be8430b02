package grip

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// wsEventsCases are bodies that encode and decode both ways: AppendWSEvents
// of events gives exactly wire, and ParseWSEvents of wire gives events.
var wsEventsCases = []struct {
	name   string
	events []WSEvent
	wire   string
}{
	{"open", []WSEvent{{Type: WSOpen}}, "OPEN\r\n"},
	{"text", []WSEvent{{Type: WSText, Content: []byte("hello")}}, "TEXT 5\r\nhello\r\n"},
	{"text empty content", []WSEvent{{Type: WSText, Content: []byte{}}}, "TEXT 0\r\n\r\n"},
	{"text nil content", []WSEvent{{Type: WSText}}, "TEXT\r\n"},
	{"binary", []WSEvent{{Type: WSBinary, Content: []byte{0x00, 0xff, '\r', '\n'}}}, "BINARY 4\r\n\x00\xff\r\n\r\n"},
	{"binary nil content", []WSEvent{{Type: WSBinary}}, "BINARY\r\n"},
	{"ping", []WSEvent{{Type: WSPing}}, "PING\r\n"},
	{"ping with content", []WSEvent{{Type: WSPing, Content: []byte("p")}}, "PING 1\r\np\r\n"},
	{"pong", []WSEvent{{Type: WSPong}}, "PONG\r\n"},
	{"pong with content", []WSEvent{{Type: WSPong, Content: []byte("pp")}}, "PONG 2\r\npp\r\n"},
	{"close without code", []WSEvent{{Type: WSClose}}, "CLOSE\r\n"},
	{"close with code", []WSEvent{{Type: WSClose, Content: []byte("\x0f\xa0client-bye")}}, "CLOSE c\r\n\x0f\xa0client-bye\r\n"},
	{"disconnect", []WSEvent{{Type: WSDisconnect}}, "DISCONNECT\r\n"},
	{"disconnect with content", []WSEvent{{Type: WSDisconnect, Content: []byte("x")}}, "DISCONNECT 1\r\nx\r\n"},
	{"unknown type", []WSEvent{{Type: "FOO", Content: []byte("bar")}}, "FOO 3\r\nbar\r\n"},
	{"hex length 0x1a", []WSEvent{{Type: WSText, Content: []byte("abcdefghijklmnopqrstuvwxyz")}},
		"TEXT 1a\r\nabcdefghijklmnopqrstuvwxyz\r\n"},
	{"hex length 0x100", []WSEvent{{Type: WSBinary, Content: bytes.Repeat([]byte{'b'}, 256)}},
		"BINARY 100\r\n" + strings.Repeat("b", 256) + "\r\n"},
	{"content with CRLF inside", []WSEvent{{Type: WSText, Content: []byte("a\r\nTEXT 1\r\nb\r\n")}},
		"TEXT e\r\na\r\nTEXT 1\r\nb\r\n\r\n"},
	{"content that is only CRLF", []WSEvent{{Type: WSText, Content: []byte("\r\n")}}, "TEXT 2\r\n\r\n\r\n"},
	{"multiple", []WSEvent{
		{Type: WSOpen},
		{Type: WSText, Content: []byte("hello")},
		{Type: WSText, Content: []byte{}},
		{Type: WSPing},
		{Type: WSBinary, Content: []byte{1, 2, 3}},
		{Type: WSClose, Content: []byte{0x03, 0xe8}},
		{Type: WSDisconnect},
	}, "OPEN\r\nTEXT 5\r\nhello\r\nTEXT 0\r\n\r\nPING\r\nBINARY 3\r\n\x01\x02\x03\r\nCLOSE 2\r\n\x03\xe8\r\nDISCONNECT\r\n"},
}

func TestAppendWSEvents(t *testing.T) {
	for _, tc := range wsEventsCases {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendWSEvents(nil, tc.events...)
			if string(got) != tc.wire {
				t.Fatalf("AppendWSEvents = %q, want %q", got, tc.wire)
			}
		})
	}
}

func TestAppendWSEventsAppends(t *testing.T) {
	dst := []byte("OPEN\r\n")
	got := AppendWSEvents(dst, WSEvent{Type: WSText, Content: []byte("hi")}, WSEvent{Type: WSPing})
	if want := "OPEN\r\nTEXT 2\r\nhi\r\nPING\r\n"; string(got) != want {
		t.Fatalf("AppendWSEvents = %q, want %q", got, want)
	}
	if got := AppendWSEvents(nil); got != nil {
		t.Fatalf("AppendWSEvents(nil) with no events = %q, want nil", got)
	}
}

func TestParseWSEvents(t *testing.T) {
	for _, tc := range wsEventsCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWSEvents([]byte(tc.wire))
			if err != nil {
				t.Fatalf("ParseWSEvents(%q): %v", tc.wire, err)
			}
			// DeepEqual tells nil content (TYPE\r\n) from empty content.
			if !reflect.DeepEqual(got, tc.events) {
				t.Fatalf("ParseWSEvents(%q) = %s, want %s", tc.wire, fmtEvents(got), fmtEvents(tc.events))
			}
		})
	}
}

// TestParseWSEventsLenient covers input ParseWSEvents accepts that
// AppendWSEvents never writes.
func TestParseWSEventsLenient(t *testing.T) {
	tests := []struct {
		name string
		wire string
		want []WSEvent
	}{
		{"nil body", "", nil},
		{"upper-case hex", "TEXT 1A\r\nabcdefghijklmnopqrstuvwxyz\r\n",
			[]WSEvent{{Type: WSText, Content: []byte("abcdefghijklmnopqrstuvwxyz")}}},
		{"leading zeros", "TEXT 005\r\nhello\r\n", []WSEvent{{Type: WSText, Content: []byte("hello")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWSEvents([]byte(tc.wire))
			if err != nil {
				t.Fatalf("ParseWSEvents(%q): %v", tc.wire, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseWSEvents(%q) = %s, want %s", tc.wire, fmtEvents(got), fmtEvents(tc.want))
			}
		})
	}
}

func TestParseWSEventsErrors(t *testing.T) {
	tests := []struct {
		name string
		wire string
		want string // part of the error text, naming the check that failed
	}{
		{"missing CRLF", "OPEN", "no CRLF after the event line"},
		{"LF only", "OPEN\n", "no CRLF after the event line"},
		{"missing CRLF after a good event", "OPEN\r\nTEXT", "event 1: no CRLF after the event line"},
		{"CR only at the end", "OPEN\r", "no CRLF after the event line"},
		{"empty line", "\r\n", "empty event type"},
		{"empty type with length", " 5\r\nhello\r\n", "empty event type"},
		{"lowercase type", "text 5\r\nhello\r\n", "bad event type"},
		{"mixed case type", "Open\r\n", "bad event type"},
		{"digit in type", "TEXT2\r\n", "bad event type"},
		{"trailing space", "OPEN \r\n", "bad content length"},
		{"two spaces", "TEXT  5\r\nhello\r\n", "bad content length"},
		{"bad hex", "TEXT 5g\r\nhello\r\n", "bad content length"},
		{"0x prefix", "TEXT 0x1a\r\nabcdefghijklmnopqrstuvwxyz\r\n", "bad content length"},
		{"decimal with plus", "TEXT +5\r\nhello\r\n", "bad content length"},
		{"negative", "TEXT -1\r\n\r\n", "bad content length"},
		{"length then more", "TEXT 5 x\r\nhello\r\n", "bad content length"},
		{"length over 31 bits", "TEXT 80000000\r\n", "bad content length"},
		{"length past the end", "TEXT 6\r\nhello\r\n", "cut short"},
		{"largest length past the end", "TEXT 7fffffff\r\nhello\r\n", "cut short"},
		{"content without CRLF", "TEXT 5\r\nhello", "cut short"},
		{"content with CR only", "TEXT 5\r\nhello\r", "cut short"},
		{"empty content without CRLF", "TEXT 0\r\n", "cut short"},
		{"content not followed by CRLF", "TEXT 4\r\nhello\r\n", "no CRLF after the content"},
		{"content followed by LF CR", "TEXT 5\r\nhello\n\r", "no CRLF after the content"},
		{"length short of CRLF inside content", "TEXT 1\r\na\r\nb\r\n", "event 1: bad event type"},
		{"second event bad", "TEXT 5\r\nhello\r\nping\r\n", "event 1: bad event type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWSEvents([]byte(tc.wire))
			if err == nil {
				t.Fatalf("ParseWSEvents(%q) = %s, want an error", tc.wire, fmtEvents(got))
			}
			if got != nil {
				t.Errorf("ParseWSEvents(%q) returned events %s with its error", tc.wire, fmtEvents(got))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseWSEvents(%q) error %q, want it to contain %q", tc.wire, err, tc.want)
			}
		})
	}
}

// TestWSEventsRoundTrip checks parse(encode(x)) == x, nil and empty
// content kept apart.
func TestWSEventsRoundTrip(t *testing.T) {
	tests := [][]WSEvent{
		{{Type: WSOpen}},
		{{Type: WSText, Content: []byte{}}, {Type: WSText}},
		{{Type: WSBinary, Content: bytes.Repeat([]byte("\r\n"), 1000)}},
		{{Type: WSClose, Content: WSCloseContent(4000, "client-bye")}, {Type: WSDisconnect}},
		{{Type: "X", Content: []byte("TEXT 1\r\n")}, {Type: WSPong, Content: []byte{0}}},
	}
	for i, events := range tests {
		wire := AppendWSEvents(nil, events...)
		got, err := ParseWSEvents(wire)
		if err != nil {
			t.Fatalf("%d: ParseWSEvents(%q): %v", i, wire, err)
		}
		if !reflect.DeepEqual(got, events) {
			t.Fatalf("%d: round trip of %s gave %s", i, fmtEvents(events), fmtEvents(got))
		}
	}
}

func TestWSCloseContent(t *testing.T) {
	tests := []struct {
		code   int
		reason string
		want   []byte // nil: no content
	}{
		{0, "", nil},
		{4000, "client-bye", []byte("\x0f\xa0client-bye")},
		{1000, "", []byte{0x03, 0xe8}},
		{1011, "héllo", []byte("\x03\xf3h\xc3\xa9llo")},
		{0, "r", []byte("\x00\x00r")},
		{65535, "", []byte{0xff, 0xff}},
	}
	for _, tc := range tests {
		got := WSCloseContent(tc.code, tc.reason)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("WSCloseContent(%d, %q) = %#v, want %#v", tc.code, tc.reason, got, tc.want)
		}
	}
}

func TestParseWSClose(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		code    int
		reason  string
		err     bool
	}{
		{"nil", nil, 0, "", false},
		{"empty", []byte{}, 0, "", false},
		{"one byte", []byte{0x03}, 0, "", true},
		{"code only", []byte{0x03, 0xe8}, 1000, "", false},
		{"code and reason", []byte("\x0f\xa0client-bye"), 4000, "client-bye", false},
		{"UTF-8 reason", []byte("\x03\xf3h\xc3\xa9llo"), 1011, "héllo", false},
		{"largest code", []byte{0xff, 0xff}, 65535, "", false},
		{"invalid UTF-8 reason", []byte("\x03\xe8\xff"), 0, "", true},
		{"cut UTF-8 reason", []byte("\x03\xe8h\xc3"), 0, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, reason, err := ParseWSClose(tc.content)
			if (err != nil) != tc.err {
				t.Fatalf("ParseWSClose(%q) error %v, want error %v", tc.content, err, tc.err)
			}
			if code != tc.code || reason != tc.reason {
				t.Fatalf("ParseWSClose(%q) = %d, %q, want %d, %q", tc.content, code, reason, tc.code, tc.reason)
			}
		})
	}
}

func TestWSCloseRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		code   int
		reason string
	}{{0, ""}, {1000, ""}, {4000, "client-bye"}, {1001, "going away"}} {
		code, reason, err := ParseWSClose(WSCloseContent(tc.code, tc.reason))
		if err != nil || code != tc.code || reason != tc.reason {
			t.Errorf("ParseWSClose(WSCloseContent(%d, %q)) = %d, %q, %v", tc.code, tc.reason, code, reason, err)
		}
	}
}

// fmtEvents shows events with nil content apart from empty content.
func fmtEvents(events []WSEvent) string {
	if events == nil {
		return "nil"
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range events {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.Type)
		if e.Content == nil {
			b.WriteString("(nil)")
		} else {
			fmt.Fprintf(&b, "(%q)", e.Content)
		}
	}
	b.WriteByte(']')
	return b.String()
}
