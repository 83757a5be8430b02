package grip

import (
	"net/http"
	"testing"
	"time"
)

// BenchmarkParseInstructionHeaders parses the headers of a typical SSE
// stream hold.
func BenchmarkParseInstructionHeaders(b *testing.B) {
	h := http.Header{
		"Content-Type":    {"text/event-stream"},
		"Cache-Control":   {"no-cache"},
		"Date":            {"Mon, 02 Jan 2026 15:04:05 GMT"},
		"Grip-Hold":       {"stream"},
		"Grip-Channel":    {"news; prev-id=41, sports; filter=skip-self", "user-42"},
		"Grip-Keep-Alive": {`event: keep-alive\ndata: \n\n; format=cstring; timeout=20`},
		"Grip-Set-Meta":   {"user=42"},
	}
	b.ReportAllocs()
	for b.Loop() {
		inst, err := ParseInstruction(200, h, nil)
		if err != nil || len(inst.Channels) != 3 {
			b.Fatalf("ParseInstruction = %+v, %v", inst, err)
		}
	}
}

// BenchmarkParseInstructJSON parses an application/grip-instruct body of a
// response hold.
func BenchmarkParseInstructJSON(b *testing.B) {
	h := http.Header{"Content-Type": {InstructContentType}, "Date": {"Mon, 02 Jan 2026 15:04:05 GMT"}}
	body := []byte(`{"hold":{"mode":"response","channels":[{"name":"news","prev-id":"41"},{"name":"user-42","filters":["skip-self"]}],"timeout":30,"meta":{"user":"42"}},` +
		`"response":{"code":200,"headers":{"Content-Type":"application/json","Cache-Control":"no-cache"},"body":"{\"items\":[]}\n"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		inst, err := ParseInstruction(200, h, body)
		if err != nil || inst.Hold != HoldResponse {
			b.Fatalf("ParseInstruction = %+v, %v", inst, err)
		}
	}
}

// BenchmarkSignerToken measures Grip-Sig tokens: "cached" is every request
// after the first in a second, "sign" a new token every call.
func BenchmarkSignerToken(b *testing.B) {
	b.Run("cached", func(b *testing.B) {
		s := NewSigner("pushpin", []byte("changeme"))
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			if tok, err := s.Token(now); err != nil || tok == "" {
				b.Fatal(tok, err)
			}
		}
	})
	b.Run("sign", func(b *testing.B) {
		s := NewSigner("pushpin", []byte("changeme"))
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Second)
			if tok, err := s.Token(now); err != nil || tok == "" {
				b.Fatal(tok, err)
			}
		}
	})
}
