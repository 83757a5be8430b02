package testutil

import (
	"io"
	"net/http"
	"testing"
)

// A stream from StreamBackend reads as the proxy tests expect it: the
// hold's headers, then the initial body line by line.
func TestStreamReadsStreamBackend(t *testing.T) {
	b := StreamBackend(t, "news", http.Header{"X-Extra": {"1"}})
	s := OpenStream(t, b.URL, nil)
	h := s.Response.Header
	if h.Get("Grip-Hold") != "stream" || h.Get("Grip-Channel") != "news" || h.Get("X-Extra") != "1" {
		t.Fatalf("headers %v", h)
	}
	if got := s.ReadLine(); got != ":held\n" {
		t.Fatalf("first line %q", got)
	}
	if got := s.ReadToEnd(); got != "\n" {
		t.Fatalf("rest %q", got)
	}
}

// ReadLine returns each line as it comes, and a Host entry in the header
// is the request's Host.
func TestStreamReadsLinesAsTheyCome(t *testing.T) {
	next := make(chan string)
	b := Backend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Host+"\n")
		w.(http.Flusher).Flush()
		for line := range next {
			io.WriteString(w, line)
			w.(http.Flusher).Flush()
		}
	})
	s := OpenStream(t, b.URL, http.Header{"Host": {"feed.example"}})
	if got := s.ReadLine(); got != "feed.example\n" {
		t.Fatalf("Host line %q", got)
	}
	for _, line := range []string{"one\n", "two\n"} {
		next <- line
		if got := s.ReadLine(); got != line {
			t.Fatalf("got %q, want %q", got, line)
		}
	}
	close(next)
	if rest, err := s.ReadRest(); rest != "" || err != nil {
		t.Fatalf("end: %q, %v", rest, err)
	}
}
