package grip

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// headerLines builds an http.Header from "Name: value" lines, adding each
// (so a name given twice becomes two header lines).
func headerLines(t testing.TB, lines ...string) http.Header {
	t.Helper()
	h := http.Header{}
	for _, l := range lines {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("bad test header line %q", l)
		}
		h.Add(k, strings.TrimSpace(v))
	}
	return h
}

// manyChannels returns a Grip-Channel value listing n channels c1..cn.
func manyChannels(n int) (string, []Channel) {
	names := make([]string, n)
	chans := make([]Channel, n)
	for i := range n {
		names[i] = fmt.Sprintf("c%d", i+1)
		chans[i] = Channel{Name: names[i]}
	}
	return strings.Join(names, ", "), chans
}

func TestParseInstructionHeaders(t *testing.T) {
	list21, chans21 := manyChannels(21)
	list20, _ := manyChannels(20)

	tests := []struct {
		name  string
		code  int // 0 means 200
		lines []string
		// want edits the expected instruction, which starts as the default:
		// no hold, 55 s timeout, the response code, empty headers, nil body.
		want    func(*Instruction)
		wantErr string // a substring of the error; "" means success
	}{
		{
			name:  "no grip headers",
			lines: []string{"Content-Type: text/plain", "X-A: 1"},
			want: func(i *Instruction) {
				i.Response.Header = http.Header{"Content-Type": {"text/plain"}, "X-A": {"1"}}
			},
		},
		{
			name:  "response hold",
			lines: []string{"Grip-Hold: response", "Grip-Channel: a"},
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldResponse, []Channel{{Name: "a"}}
			},
		},
		{
			name:  "stream hold",
			lines: []string{"Grip-Hold: stream", "Grip-Channel: a"},
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldStream, []Channel{{Name: "a"}}
			},
		},
		{name: "hold unknown mode", lines: []string{"Grip-Hold: forever", "Grip-Channel: a"}, wantErr: "Grip-Hold"},
		{name: "hold mode is case sensitive", lines: []string{"Grip-Hold: Stream", "Grip-Channel: a"}, wantErr: "Grip-Hold"},
		{name: "hold without channel", lines: []string{"Grip-Hold: stream"}, wantErr: "without any Grip-Channel"},
		{name: "hold with only empty channel list", lines: []string{"Grip-Hold: response", "Grip-Channel: , ,"}, wantErr: "without any Grip-Channel"},
		{
			name:  "channels without hold are kept",
			lines: []string{"Grip-Channel: a"},
			want:  func(i *Instruction) { i.Channels = []Channel{{Name: "a"}} },
		},
		{
			name:  "channel on repeated lines",
			lines: []string{"Grip-Hold: stream", "Grip-Channel: a", "Grip-Channel: b"},
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldStream, []Channel{{Name: "a"}, {Name: "b"}}
			},
		},
		{
			name:  "channel comma list and lines",
			lines: []string{"Grip-Hold: stream", "Grip-Channel: a , b,c", "Grip-Channel: d"},
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldStream, []Channel{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}}
			},
		},
		{
			name:  "channel prev-id",
			lines: []string{"Grip-Hold: response", "Grip-Channel: a; prev-id=7, b;prev-id=x9"},
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldResponse, []Channel{{Name: "a", PrevID: "7"}, {Name: "b", PrevID: "x9"}}
			},
		},
		{
			name:  "channel filters in order",
			lines: []string{"Grip-Hold: stream", "Grip-Channel: a; filter=skip-self; prev-id=1; filter=build-id"},
			want: func(i *Instruction) {
				i.Hold = HoldStream
				i.Channels = []Channel{{Name: "a", PrevID: "1", Filters: []string{"skip-self", "build-id"}}}
			},
		},
		{
			name:  "channel parameter names are case insensitive",
			lines: []string{"Grip-Hold: stream", "Grip-Channel: a; Prev-ID=3; FILTER=skip-self"},
			want: func(i *Instruction) {
				i.Hold = HoldStream
				i.Channels = []Channel{{Name: "a", PrevID: "3", Filters: []string{"skip-self"}}}
			},
		},
		{
			name:  "channel quoted values keep commas and semicolons",
			lines: []string{`Grip-Hold: stream`, `Grip-Channel: "room,1"; prev-id="a;b", "q\"x"`},
			want: func(i *Instruction) {
				i.Hold = HoldStream
				i.Channels = []Channel{{Name: "room,1", PrevID: "a;b"}, {Name: `q"x`}}
			},
		},
		{
			name:  "unknown channel parameters are ignored",
			lines: []string{"Grip-Hold: stream", "Grip-Channel: a; color=blue"},
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldStream, []Channel{{Name: "a"}}
			},
		},
		{
			name:  "more than 20 channels: all are kept (the proxy enforces its own limit)",
			lines: []string{"Grip-Hold: stream", "Grip-Channel: " + list21},
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldStream, chans21
			},
		},
		{
			name:  "more than 20 channels over several lines",
			lines: []string{"Grip-Hold: stream", "Grip-Channel: " + list20, "Grip-Channel: extra"},
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldStream, append(chans21[:20:20], Channel{Name: "extra"})
			},
		},
		{
			name:  "five filters is the limit",
			lines: []string{"Grip-Hold: stream", "Grip-Channel: a; filter=f1; filter=f2; filter=f3; filter=f4; filter=f5"},
			want: func(i *Instruction) {
				i.Hold = HoldStream
				i.Channels = []Channel{{Name: "a", Filters: []string{"f1", "f2", "f3", "f4", "f5"}}}
			},
		},
		{
			name:    "more than 5 filters",
			lines:   []string{"Grip-Hold: stream", "Grip-Channel: a; filter=f1; filter=f2; filter=f3; filter=f4; filter=f5; filter=f6"},
			wantErr: "filters",
		},
		{name: "empty channel name", lines: []string{"Grip-Hold: stream", "Grip-Channel: a, ; prev-id=1"}, wantErr: "empty channel name"},
		{name: "empty quoted channel name", lines: []string{"Grip-Hold: stream", `Grip-Channel: ""`}, wantErr: "empty channel name"},
		{name: "unterminated quote", lines: []string{"Grip-Hold: stream", `Grip-Channel: "abc`}, wantErr: "unterminated"},
		{name: "empty channel parameter name", lines: []string{"Grip-Hold: stream", `Grip-Channel: a; =x`}, wantErr: "parameter name"},

		{
			name:  "timeout 8",
			lines: []string{"Grip-Hold: response", "Grip-Channel: a", "Grip-Timeout: 8"},
			want: func(i *Instruction) {
				i.Hold, i.Channels, i.Timeout = HoldResponse, []Channel{{Name: "a"}}, 8*time.Second
			},
		},
		{
			name:  "timeout 0 raised to 5",
			lines: []string{"Grip-Hold: response", "Grip-Channel: a", "Grip-Timeout: 0"},
			want: func(i *Instruction) {
				i.Hold, i.Channels, i.Timeout = HoldResponse, []Channel{{Name: "a"}}, 5*time.Second
			},
		},
		{
			name:  "timeout 3 raised to 5",
			lines: []string{"Grip-Hold: response", "Grip-Channel: a", "Grip-Timeout: 3"},
			want: func(i *Instruction) {
				i.Hold, i.Channels, i.Timeout = HoldResponse, []Channel{{Name: "a"}}, 5*time.Second
			},
		},
		{
			name:  "huge timeout capped at a day",
			lines: []string{"Grip-Hold: response", "Grip-Channel: a", "Grip-Timeout: 9999999999"},
			want: func(i *Instruction) {
				i.Hold, i.Channels, i.Timeout = HoldResponse, []Channel{{Name: "a"}}, 24*time.Hour
			},
		},
		{name: "timeout junk", lines: []string{"Grip-Timeout: soon"}, wantErr: "Grip-Timeout"},
		{name: "timeout negative", lines: []string{"Grip-Timeout: -1"}, wantErr: "Grip-Timeout"},
		{name: "timeout fraction", lines: []string{"Grip-Timeout: 1.5"}, wantErr: "Grip-Timeout"},

		{
			name:  "keep-alive raw with defaults",
			lines: []string{"Grip-Keep-Alive: ping"},
			want: func(i *Instruction) {
				i.KeepAlive = &KeepAlive{Data: []byte("ping"), Timeout: 55 * time.Second, Mode: KeepAliveIdle}
			},
		},
		{
			name:  "keep-alive explicit raw format",
			lines: []string{`Grip-Keep-Alive: "a;b"; format=raw`},
			want: func(i *Instruction) {
				i.KeepAlive = &KeepAlive{Data: []byte("a;b"), Timeout: 55 * time.Second, Mode: KeepAliveIdle}
			},
		},
		{
			name:  "keep-alive cstring newline",
			lines: []string{`Grip-Keep-Alive: event: ka\n\n; format=cstring`},
			want: func(i *Instruction) {
				i.KeepAlive = &KeepAlive{Data: []byte("event: ka\n\n"), Timeout: 55 * time.Second, Mode: KeepAliveIdle}
			},
		},
		{
			name:  "keep-alive cstring escapes",
			lines: []string{`Grip-Keep-Alive: \x41\x0a\r\\z\x7E; format=cstring`},
			want: func(i *Instruction) {
				i.KeepAlive = &KeepAlive{Data: []byte("A\n\r\\z~"), Timeout: 55 * time.Second, Mode: KeepAliveIdle}
			},
		},
		{name: "keep-alive cstring bad hex", lines: []string{`Grip-Keep-Alive: \xZZ; format=cstring`}, wantErr: "Grip-Keep-Alive"},
		{name: "keep-alive cstring short hex", lines: []string{`Grip-Keep-Alive: ab\x4; format=cstring`}, wantErr: "Grip-Keep-Alive"},
		{name: "keep-alive cstring trailing backslash", lines: []string{`Grip-Keep-Alive: ab\; format=cstring`}, wantErr: "Grip-Keep-Alive"},
		{name: "keep-alive cstring unknown escape", lines: []string{`Grip-Keep-Alive: \q; format=cstring`}, wantErr: "Grip-Keep-Alive"},
		{
			name:  "keep-alive base64",
			lines: []string{"Grip-Keep-Alive: OgoK; format=base64"},
			want: func(i *Instruction) {
				i.KeepAlive = &KeepAlive{Data: []byte(":\n\n"), Timeout: 55 * time.Second, Mode: KeepAliveIdle}
			},
		},
		{name: "keep-alive bad base64", lines: []string{"Grip-Keep-Alive: !!!; format=base64"}, wantErr: "Grip-Keep-Alive"},
		{
			name:  "keep-alive timeout and interval mode",
			lines: []string{"Grip-Keep-Alive: ka; timeout=20; mode=interval"},
			want: func(i *Instruction) {
				i.KeepAlive = &KeepAlive{Data: []byte("ka"), Timeout: 20 * time.Second, Mode: KeepAliveInterval}
			},
		},
		{
			name:  "keep-alive idle mode",
			lines: []string{"Grip-Keep-Alive: ka; mode=idle; timeout=3"},
			want: func(i *Instruction) {
				i.KeepAlive = &KeepAlive{Data: []byte("ka"), Timeout: 3 * time.Second, Mode: KeepAliveIdle}
			},
		},
		{name: "keep-alive bad format", lines: []string{"Grip-Keep-Alive: ka; format=hex"}, wantErr: "format"},
		{name: "keep-alive bad mode", lines: []string{"Grip-Keep-Alive: ka; mode=sometimes"}, wantErr: "mode"},
		{name: "keep-alive zero timeout", lines: []string{"Grip-Keep-Alive: ka; timeout=0"}, wantErr: "timeout"},
		{name: "keep-alive junk timeout", lines: []string{"Grip-Keep-Alive: ka; timeout=soon"}, wantErr: "timeout"},

		{
			name:  "set-meta lines and lists",
			lines: []string{"Grip-Set-Meta: user=alice, room=\"a, b\"", "Grip-Set-Meta: empty="},
			want: func(i *Instruction) {
				i.Meta = map[string]string{"user": "alice", "room": "a, b", "empty": ""}
			},
		},
		{name: "set-meta without =", lines: []string{"Grip-Set-Meta: alice"}, wantErr: "Grip-Set-Meta"},
		{name: "set-meta without name", lines: []string{"Grip-Set-Meta: =alice"}, wantErr: "Grip-Set-Meta"},

		{
			name:  "link next with default timeout",
			lines: []string{"Grip-Link: </feed?since=3>; rel=next"},
			want: func(i *Instruction) {
				i.Links = []Link{{URL: "/feed?since=3", Rel: "next", Timeout: 120 * time.Second}}
			},
		},
		{
			name:  "link next with timeout, and gone",
			lines: []string{"Grip-Link: <http://b/next>; rel=next; timeout=30", "Grip-Link: </bye>; rel=gone"},
			want: func(i *Instruction) {
				i.Links = []Link{
					{URL: "http://b/next", Rel: "next", Timeout: 30 * time.Second},
					{URL: "/bye", Rel: "gone", Timeout: 120 * time.Second},
				}
			},
		},
		{name: "link without angle brackets", lines: []string{"Grip-Link: /next; rel=next"}, wantErr: "Grip-Link"},
		{name: "link with rel prev", lines: []string{"Grip-Link: </p>; rel=prev"}, wantErr: "Grip-Link"},
		{name: "link without rel", lines: []string{"Grip-Link: </p>"}, wantErr: "Grip-Link"},
		{name: "link bad timeout", lines: []string{"Grip-Link: </p>; rel=next; timeout=x"}, wantErr: "Grip-Link"},
		{name: "link zero timeout", lines: []string{"Grip-Link: </p>; rel=next; timeout=0"}, wantErr: "Grip-Link"},

		{
			name:  "status with reason",
			lines: []string{"Grip-Status: 404 Nope"},
			want:  func(i *Instruction) { i.Response.Code, i.Response.Reason = 404, "Nope" },
		},
		{
			name:  "status with a multi-word reason",
			lines: []string{"Grip-Status: 418 Teapot Here"},
			want:  func(i *Instruction) { i.Response.Code, i.Response.Reason = 418, "Teapot Here" },
		},
		{
			name:  "status code only",
			code:  500,
			lines: []string{"Grip-Status: 202"},
			want:  func(i *Instruction) { i.Response.Code = 202 },
		},
		{name: "status 0", lines: []string{"Grip-Status: 0"}, wantErr: "Grip-Status"},
		{name: "status 1000", lines: []string{"Grip-Status: 1000"}, wantErr: "Grip-Status"},
		{name: "status junk", lines: []string{"Grip-Status: OK"}, wantErr: "Grip-Status"},

		{
			name:  "expose headers keeps only the listed ones",
			lines: []string{"Content-Type: text/plain", "X-A: 1", "X-B: 2", "X-C: 3", "Grip-Expose-Headers: x-a, Content-Type", "Grip-Expose-Headers: X-C, X-Missing"},
			want: func(i *Instruction) {
				i.Response.Header = http.Header{"Content-Type": {"text/plain"}, "X-A": {"1"}, "X-C": {"3"}}
			},
		},
		{
			name:  "expose headers cannot expose Grip headers",
			lines: []string{"X-A: 1", "Grip-Expose-Headers: X-A, Grip-Channel", "Grip-Channel: a"},
			want: func(i *Instruction) {
				i.Channels = []Channel{{Name: "a"}}
				i.Response.Header = http.Header{"X-A": {"1"}}
			},
		},
		{
			name: "every Grip header is removed from the client response",
			code: 201,
			lines: []string{
				"Content-Type: text/event-stream", "Cache-Control: no-cache", "X-Multi: 1", "X-Multi: 2",
				"Grip-Hold: stream", "Grip-Channel: a", "Grip-Keep-Alive: ka", "Grip-Timeout: 10",
				"Grip-Set-Meta: u=1", "Grip-Link: </n>; rel=next", "Grip-Status: 200", "Grip-Whatever: x",
				"Grip-Sig: token",
			},
			want: func(i *Instruction) {
				i.Hold, i.Channels, i.Timeout = HoldStream, []Channel{{Name: "a"}}, 10*time.Second
				i.KeepAlive = &KeepAlive{Data: []byte("ka"), Timeout: 55 * time.Second, Mode: KeepAliveIdle}
				i.Meta = map[string]string{"u": "1"}
				i.Links = []Link{{URL: "/n", Rel: "next", Timeout: 120 * time.Second}}
				i.Response.Code = 200
				i.Response.Header = http.Header{
					"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-cache"}, "X-Multi": {"1", "2"},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := tt.code
			if code == 0 {
				code = 200
			}
			h := headerLines(t, tt.lines...)
			before := h.Clone()
			got, err := ParseInstruction(code, h, nil)
			if !reflect.DeepEqual(h, before) {
				t.Errorf("ParseInstruction changed its input headers:\n got %v\nwant %v", h, before)
			}
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseInstruction = %+v, want an error containing %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("got instruction %+v along with error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseInstruction: %v", err)
			}
			want := &Instruction{Timeout: DefaultTimeout, Response: Response{Code: code, Header: http.Header{}}}
			if tt.want != nil {
				tt.want(want)
			}
			assertInstruction(t, got, want)
		})
	}
}

func assertInstruction(t *testing.T, got, want *Instruction) {
	t.Helper()
	if got.Hold != want.Hold {
		t.Errorf("Hold = %q, want %q", got.Hold, want.Hold)
	}
	if !reflect.DeepEqual(got.Channels, want.Channels) {
		t.Errorf("Channels = %+v\nwant %+v", got.Channels, want.Channels)
	}
	if got.Timeout != want.Timeout {
		t.Errorf("Timeout = %v, want %v", got.Timeout, want.Timeout)
	}
	if !reflect.DeepEqual(got.KeepAlive, want.KeepAlive) {
		t.Errorf("KeepAlive = %s, want %s", fmtKeepAlive(got.KeepAlive), fmtKeepAlive(want.KeepAlive))
	}
	if !reflect.DeepEqual(got.Meta, want.Meta) {
		t.Errorf("Meta = %v, want %v", got.Meta, want.Meta)
	}
	if !reflect.DeepEqual(got.Links, want.Links) {
		t.Errorf("Links = %+v, want %+v", got.Links, want.Links)
	}
	if got.Response.Code != want.Response.Code || got.Response.Reason != want.Response.Reason {
		t.Errorf("Response status = %d %q, want %d %q", got.Response.Code, got.Response.Reason, want.Response.Code, want.Response.Reason)
	}
	if !reflect.DeepEqual(got.Response.Header, want.Response.Header) {
		t.Errorf("Response.Header = %v\nwant %v", got.Response.Header, want.Response.Header)
	}
	if string(got.Response.Body) != string(want.Response.Body) || (got.Response.Body == nil) != (want.Response.Body == nil) {
		t.Errorf("Response.Body = %q (nil %t), want %q (nil %t)", got.Response.Body, got.Response.Body == nil, want.Response.Body, want.Response.Body == nil)
	}
}

func fmtKeepAlive(ka *KeepAlive) string {
	if ka == nil {
		return "nil"
	}
	return fmt.Sprintf("{Data:%q Timeout:%v Mode:%q}", ka.Data, ka.Timeout, ka.Mode)
}

func TestParseInstructionHeaderFormKeepsBody(t *testing.T) {
	h := headerLines(t, "Grip-Hold: response", "Grip-Channel: a", "Content-Type: text/plain")
	got, err := ParseInstruction(200, h, []byte("timed out\n"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Response.Body) != "timed out\n" {
		t.Errorf("Response.Body = %q, want the backend body", got.Response.Body)
	}
	if got.Response.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("Content-Type = %q, want text/plain", got.Response.Header.Get("Content-Type"))
	}
}

func TestParseInstructionNilHeader(t *testing.T) {
	got, err := ParseInstruction(204, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hold != HoldNone || got.Response.Code != 204 || got.Response.Header == nil || len(got.Response.Header) != 0 {
		t.Errorf("got %+v, want no hold, code 204, empty non-nil headers", got)
	}
}

func TestHasInstructionAndIsInstruct(t *testing.T) {
	tests := []struct {
		name           string
		h              http.Header
		hasInstruction bool
		isInstruct     bool
	}{
		{"nil", nil, false, false},
		{"plain response", http.Header{"Content-Type": {"text/plain"}, "X-A": {"1"}}, false, false},
		{"Grip-Hold", http.Header{"Grip-Hold": {"stream"}}, true, false},
		{"any Grip header", http.Header{"Grip-Anything": {""}}, true, false},
		{"lower-case key", http.Header{"grip-channel": {"a"}}, true, false},
		{"a name that only starts like grip", http.Header{"Gripper": {"x"}, "Grip": {"x"}}, false, false},
		{"instruct type", http.Header{"Content-Type": {"application/grip-instruct"}}, true, true},
		{"instruct type with charset", http.Header{"Content-Type": {"application/grip-instruct; charset=utf-8"}}, true, true},
		{"instruct type in other case", http.Header{"Content-Type": {"Application/GRIP-Instruct"}}, true, true},
		{"a longer type", http.Header{"Content-Type": {"application/grip-instructions"}}, false, false},
		{"json", http.Header{"Content-Type": {"application/json"}}, false, false},
		{"malformed content type", http.Header{"Content-Type": {"application/grip-instruct; ="}}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HasInstruction(tt.h); got != tt.hasInstruction {
				t.Errorf("HasInstruction = %t, want %t", got, tt.hasInstruction)
			}
			if got := IsInstruct(tt.h); got != tt.isInstruct {
				t.Errorf("IsInstruct = %t, want %t", got, tt.isInstruct)
			}
		})
	}
}

func TestKeepHeaders(t *testing.T) {
	h := http.Header{"Content-Type": {"text/plain"}, "X-A": {"1", "2"}, "X-B": {"3"}, "Etag": {"e"}}
	tests := []struct {
		name  string
		names []string
		want  http.Header
	}{
		{"none listed", nil, http.Header{}},
		{"one", []string{"X-A"}, http.Header{"X-A": {"1", "2"}}},
		{"case and spaces", []string{" x-a ,content-TYPE"}, http.Header{"X-A": {"1", "2"}, "Content-Type": {"text/plain"}}},
		{"several lines", []string{"X-B", "ETag"}, http.Header{"X-B": {"3"}, "Etag": {"e"}}},
		{"missing and empty names", []string{"X-Missing, , ,X-B"}, http.Header{"X-B": {"3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := KeepHeaders(h, tt.names)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("KeepHeaders(%q) = %v, want %v", tt.names, got, tt.want)
			}
		})
	}
	if len(h) != 4 {
		t.Errorf("KeepHeaders changed its input: %v", h)
	}
}

func TestStripGripHeaders(t *testing.T) {
	h := http.Header{
		"Grip-Hold": {"stream"}, "Grip-Channel": {"a", "b"}, "grip-raw": {"x"}, "GRIP-SIG": {"t"},
		"Content-Type": {"text/plain"}, "Gripper": {"keep"}, "X-Grip-Not": {"keep"},
	}
	StripGripHeaders(h)
	want := http.Header{"Content-Type": {"text/plain"}, "Gripper": {"keep"}, "X-Grip-Not": {"keep"}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("after StripGripHeaders: %v, want %v", h, want)
	}
	StripGripHeaders(nil) // must not panic
}
