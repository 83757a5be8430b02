// instruct_json_test.go holds the tests of the JSON form of GRIP instructions (application/grip-instruct).

package grip

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseInstructionJSON(t *testing.T) {
	_, chans21 := manyChannels(21)
	var json21 []string
	for _, c := range chans21 {
		json21 = append(json21, fmt.Sprintf(`{"name":%q}`, c.Name))
	}

	tests := []struct {
		name  string
		code  int      // 0 means 200
		lines []string // extra response headers; Content-Type is added unless ctype is set
		ctype string   // "" means application/grip-instruct
		body  string
		// want edits the expected instruction, which starts as: no hold,
		// 55 s timeout, code 200, empty headers, nil body.
		want    func(*Instruction)
		wantErr string
	}{
		{
			name: "response hold",
			body: `{"hold":{"mode":"response","channels":[{"name":"a"}]}}`,
			want: func(i *Instruction) { i.Hold, i.Channels = HoldResponse, []Channel{{Name: "a"}} },
		},
		{
			name: "mode defaults to response",
			body: `{"hold":{"channels":[{"name":"a"}]}}`,
			want: func(i *Instruction) { i.Hold, i.Channels = HoldResponse, []Channel{{Name: "a"}} },
		},
		{
			name: "stream hold",
			body: `{"hold":{"mode":"stream","channels":[{"name":"a"}]}}`,
			want: func(i *Instruction) { i.Hold, i.Channels = HoldStream, []Channel{{Name: "a"}} },
		},
		{
			name:  "content type with charset parameter",
			ctype: "application/grip-instruct; charset=utf-8",
			body:  `{"hold":{"mode":"stream","channels":[{"name":"a"}]}}`,
			want:  func(i *Instruction) { i.Hold, i.Channels = HoldStream, []Channel{{Name: "a"}} },
		},
		{
			name: "channels with prev-id and filters",
			body: `{"hold":{"mode":"stream","channels":[{"name":"a","prev-id":"3"},{"name":"b","filters":["skip-self","var-subst"]}]}}`,
			want: func(i *Instruction) {
				i.Hold = HoldStream
				i.Channels = []Channel{{Name: "a", PrevID: "3"}, {Name: "b", Filters: []string{"skip-self", "var-subst"}}}
			},
		},
		{
			name: "more than 20 channels: all are kept (the proxy enforces its own limit)",
			body: `{"hold":{"channels":[` + strings.Join(json21, ",") + `]}}`,
			want: func(i *Instruction) { i.Hold, i.Channels = HoldResponse, chans21 },
		},
		{
			name: "timeout 8",
			body: `{"hold":{"channels":[{"name":"a"}],"timeout":8}}`,
			want: func(i *Instruction) {
				i.Hold, i.Channels, i.Timeout = HoldResponse, []Channel{{Name: "a"}}, 8*time.Second
			},
		},
		{
			name: "timeout 0 raised to 5",
			body: `{"hold":{"channels":[{"name":"a"}],"timeout":0}}`,
			want: func(i *Instruction) {
				i.Hold, i.Channels, i.Timeout = HoldResponse, []Channel{{Name: "a"}}, 5*time.Second
			},
		},
		{
			name: "huge timeout capped at a day",
			body: `{"hold":{"channels":[{"name":"a"}],"timeout":2000000000}}`,
			want: func(i *Instruction) {
				i.Hold, i.Channels, i.Timeout = HoldResponse, []Channel{{Name: "a"}}, 24*time.Hour
			},
		},
		{name: "negative timeout", body: `{"hold":{"channels":[{"name":"a"}],"timeout":-1}}`, wantErr: "timeout"},
		{name: "string timeout", body: `{"hold":{"channels":[{"name":"a"}],"timeout":"8"}}`, wantErr: "JSON"},
		{
			name: "keep-alive content with default timeout",
			body: `{"hold":{"mode":"stream","channels":[{"name":"a"}],"keep-alive":{"content":":\n\n"}}}`,
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldStream, []Channel{{Name: "a"}}
				i.KeepAlive = &KeepAlive{Data: []byte(":\n\n"), Timeout: 55 * time.Second, Mode: KeepAliveIdle}
			},
		},
		{
			name: "keep-alive content-bin and timeout",
			body: `{"hold":{"mode":"stream","channels":[{"name":"a"}],"keep-alive":{"content-bin":"AAEC","timeout":20}}}`,
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldStream, []Channel{{Name: "a"}}
				i.KeepAlive = &KeepAlive{Data: []byte{0, 1, 2}, Timeout: 20 * time.Second, Mode: KeepAliveIdle}
			},
		},
		{name: "keep-alive bad content-bin", body: `{"hold":{"channels":[{"name":"a"}],"keep-alive":{"content-bin":"%%"}}}`, wantErr: "content-bin"},
		{name: "keep-alive without content", body: `{"hold":{"channels":[{"name":"a"}],"keep-alive":{"timeout":5}}}`, wantErr: "keep-alive"},
		{name: "keep-alive zero timeout", body: `{"hold":{"channels":[{"name":"a"}],"keep-alive":{"content":"x","timeout":0}}}`, wantErr: "keep-alive.timeout"},
		{
			name: "meta",
			body: `{"hold":{"channels":[{"name":"a"}],"meta":{"user":"alice","id_format":"%(a)s"}}}`,
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldResponse, []Channel{{Name: "a"}}
				i.Meta = map[string]string{"user": "alice", "id_format": "%(a)s"}
			},
		},
		{name: "meta with a non-string value", body: `{"hold":{"channels":[{"name":"a"}],"meta":{"n":1}}}`, wantErr: "JSON"},
		{
			name: "response with object headers and body",
			body: `{"hold":{"channels":[{"name":"a"}]},"response":{"code":202,"reason":"Waiting","headers":{"Content-Type":"text/plain","x-j":"1"},"body":"timeout\n"}}`,
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldResponse, []Channel{{Name: "a"}}
				i.Response = Response{Code: 202, Reason: "Waiting", Header: http.Header{"Content-Type": {"text/plain"}, "X-J": {"1"}}, Body: []byte("timeout\n")}
			},
		},
		{
			name: "response with header pairs and body-bin",
			body: `{"hold":{"mode":"stream","channels":[{"name":"a"}]},"response":{"headers":[["X-A","1"],["X-A","2"],["Content-Type","text/event-stream"]],"body-bin":"aGkK"}}`,
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldStream, []Channel{{Name: "a"}}
				i.Response = Response{Code: 200, Header: http.Header{"X-A": {"1", "2"}, "Content-Type": {"text/event-stream"}}, Body: []byte("hi\n")}
			},
		},
		{
			name: "response with null headers",
			body: `{"response":{"headers":null,"body":"x"}}`,
			want: func(i *Instruction) { i.Response.Body = []byte("x") },
		},
		{
			name: "no hold: the response is sent as it is",
			body: `{"response":{"code":404,"headers":{"X-N":"1"},"body":"gone"}}`,
			want: func(i *Instruction) {
				i.Response = Response{Code: 404, Header: http.Header{"X-N": {"1"}}, Body: []byte("gone")}
			},
		},
		{
			name:  "outer headers are dropped",
			lines: []string{"X-Outer: 1", "Cache-Control: no-cache"},
			body:  `{"hold":{"channels":[{"name":"a"}]},"response":{"headers":{"X-Inner":"1"}}}`,
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldResponse, []Channel{{Name: "a"}}
				i.Response.Header = http.Header{"X-Inner": {"1"}}
			},
		},
		{
			name: "Grip headers in the JSON response never reach the client",
			body: `{"response":{"headers":[["Grip-Hold","stream"],["grip-channel","x"],["X-A","1"]]}}`,
			want: func(i *Instruction) { i.Response.Header = http.Header{"X-A": {"1"}} },
		},
		{
			name:  "Grip-Status still applies",
			lines: []string{"Grip-Status: 202 Later"},
			body:  `{"hold":{"channels":[{"name":"a"}]},"response":{"headers":{"X-J":"1"}}}`,
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldResponse, []Channel{{Name: "a"}}
				i.Response = Response{Code: 202, Reason: "Later", Header: http.Header{"X-J": {"1"}}}
			},
		},
		{
			name:  "response.code wins over Grip-Status",
			lines: []string{"Grip-Status: 202 Later"},
			body:  `{"response":{"code":201}}`,
			want:  func(i *Instruction) { i.Response.Code = 201 },
		},
		{
			name:  "Grip-Hold header with channels from the body",
			lines: []string{"Grip-Hold: stream"},
			body:  `{"hold":{"mode":"stream","channels":[{"name":"a"}]}}`,
			want:  func(i *Instruction) { i.Hold, i.Channels = HoldStream, []Channel{{Name: "a"}} },
		},
		{
			name:  "Grip headers apply when the body has no hold",
			lines: []string{"Grip-Hold: stream", "Grip-Channel: h", "Grip-Keep-Alive: ka"},
			body:  `{"response":{"body":"start\n"}}`,
			want: func(i *Instruction) {
				i.Hold, i.Channels = HoldStream, []Channel{{Name: "h"}}
				i.KeepAlive = &KeepAlive{Data: []byte("ka"), Timeout: 55 * time.Second, Mode: KeepAliveIdle}
				i.Response.Body = []byte("start\n")
			},
		},
		{name: "Grip-Hold header and no channel anywhere", lines: []string{"Grip-Hold: stream"}, body: `{}`, wantErr: "without any Grip-Channel"},
		{
			name: "empty object: nothing to do",
			body: `{}`,
		},
		{name: "malformed JSON", body: `{"hold":`, wantErr: "JSON"},
		{name: "empty body", body: ``, wantErr: "JSON"},
		{name: "not an object", body: `[1,2]`, wantErr: "JSON"},
		{name: "non-200 status", code: 202, body: `{"hold":{"channels":[{"name":"a"}]}}`, wantErr: "200"},
		{name: "bad mode", body: `{"hold":{"mode":"poll","channels":[{"name":"a"}]}}`, wantErr: "hold.mode"},
		{name: "no channels", body: `{"hold":{"mode":"stream","channels":[]}}`, wantErr: "hold.channels"},
		{name: "channels missing", body: `{"hold":{"mode":"stream"}}`, wantErr: "hold.channels"},
		{name: "channel without name", body: `{"hold":{"channels":[{"prev-id":"1"}]}}`, wantErr: "no name"},
		{name: "more than 5 filters", body: `{"hold":{"channels":[{"name":"a","filters":["1","2","3","4","5","6"]}]}}`, wantErr: "filters"},
		{name: "response code 1000", body: `{"response":{"code":1000}}`, wantErr: "response.code"},
		{name: "response code 0", body: `{"response":{"code":0}}`, wantErr: "response.code"},
		{name: "headers of the wrong type", body: `{"response":{"headers":"X-A: 1"}}`, wantErr: "response.headers"},
		{name: "header pair with three elements", body: `{"response":{"headers":[["X-A","1","2"]]}}`, wantErr: "response.headers"},
		{name: "header with a non-string value", body: `{"response":{"headers":{"X-A":1}}}`, wantErr: "response.headers"},
		{name: "bad body-bin", body: `{"response":{"body-bin":"not base64!"}}`, wantErr: "body-bin"},
		{name: "bad Grip header still fails", lines: []string{"Grip-Timeout: x"}, body: `{}`, wantErr: "Grip-Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := tt.code
			if code == 0 {
				code = 200
			}
			ctype := tt.ctype
			if ctype == "" {
				ctype = InstructContentType
			}
			h := headerLines(t, append([]string{"Content-Type: " + ctype}, tt.lines...)...)
			got, err := ParseInstruction(code, h, []byte(tt.body))
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseInstruction = %+v, want an error containing %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseInstruction: %v", err)
			}
			want := &Instruction{Timeout: DefaultTimeout, Response: Response{Code: 200, Header: http.Header{}}}
			if tt.want != nil {
				tt.want(want)
			}
			assertInstruction(t, got, want)
		})
	}
}
