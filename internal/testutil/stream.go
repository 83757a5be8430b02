package testutil

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

// Stream is a client's held HTTP stream (SSE or plain chunks), read line
// by line. Every read is bounded by WaitTimeout: a read that gets nothing
// in time cancels the request and fails the test, so no read blocks past
// the test. The stream is closed when the test ends.
type Stream struct {
	// Response is the answer's status and headers; read the body through
	// the Stream's methods.
	Response *http.Response

	t      testing.TB
	r      *bufio.Reader
	cancel context.CancelFunc
}

// OpenStream sends GET url with header (may be nil; a "Host" entry sets
// the request's Host) and returns the stream, whatever its status. It
// does not follow redirects.
func OpenStream(t testing.TB, url string, header http.Header) *Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if host := header.Get("Host"); host != "" {
		req.Host = host
	}
	timer := time.AfterFunc(WaitTimeout, cancel)
	resp, err := http.DefaultTransport.RoundTrip(req)
	timer.Stop()
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	s := &Stream{Response: resp, t: t, r: bufio.NewReader(resp.Body), cancel: cancel}
	t.Cleanup(s.Close)
	return s
}

// ReadLine returns the next line with its "\n". It fails the test when
// the stream ends or breaks first, or no line comes within WaitTimeout.
func (s *Stream) ReadLine() string {
	s.t.Helper()
	var line string
	err := s.bounded(func() (err error) {
		line, err = s.r.ReadString('\n')
		return err
	})
	if err != nil {
		s.t.Fatalf("stream: %v after %q; want a whole line", err, line)
	}
	return line
}

// ReadToEnd reads the rest of the stream until it ends cleanly (the
// backend or a published close ended it), and fails the test when it
// breaks or does not end within WaitTimeout.
func (s *Stream) ReadToEnd() string {
	s.t.Helper()
	rest, err := s.ReadRest()
	if err != nil {
		s.t.Fatalf("stream did not end cleanly: %v (read %q)", err, rest)
	}
	return rest
}

// ReadRest reads until the stream ends, cleanly or not, and returns what
// came and how it ended (nil for a clean end). It fails the test only
// when the stream does not end within WaitTimeout.
func (s *Stream) ReadRest() (string, error) {
	s.t.Helper()
	var rest []byte
	err := s.bounded(func() (err error) {
		rest, err = io.ReadAll(s.r)
		return err
	})
	if errors.Is(err, errReadTimeout) {
		s.t.Fatalf("stream: %v after %q; want its end", err, rest)
	}
	return string(rest), err
}

// Close drops the stream, the way a client goes away.
func (s *Stream) Close() {
	s.cancel()
	s.Response.Body.Close()
}

// errReadTimeout says a read got nothing within WaitTimeout.
var errReadTimeout = errors.New("nothing within " + WaitTimeout.String())

// bounded runs read, cancelling the request if it takes longer than
// WaitTimeout.
func (s *Stream) bounded(read func() error) error {
	timer := time.AfterFunc(WaitTimeout, s.cancel)
	err := read()
	if !timer.Stop() {
		return errReadTimeout
	}
	return err
}
