package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// publishTarget is a fake control API that records the last request and
// answers with code and reply.
type publishTarget struct {
	srv    *httptest.Server
	path   string
	header http.Header
	body   map[string]any
}

func newPublishTarget(t *testing.T, code int, reply string) *publishTarget {
	t.Helper()
	pt := &publishTarget{}
	pt.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pt.path = r.URL.Path
		pt.header = r.Header.Clone()
		raw, _ := io.ReadAll(r.Body)
		pt.body = nil
		if err := json.Unmarshal(raw, &pt.body); err != nil {
			t.Errorf("body is not JSON: %v: %s", err, raw)
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(code)
		io.WriteString(w, reply)
	}))
	t.Cleanup(pt.srv.Close)
	return pt
}

// item returns the one published item's JSON.
func (pt *publishTarget) item(t *testing.T) map[string]any {
	t.Helper()
	items, _ := pt.body["items"].([]any)
	if len(items) != 1 {
		t.Fatalf("body %v does not hold one item", pt.body)
	}
	return items[0].(map[string]any)
}

// runWith runs `gripd publish args...` with stdin and $GRIP_URL.
func runWith(stdin, gripURL string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = publishCommand(args, strings.NewReader(stdin), gripURL, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPublishCommandSend(t *testing.T) {
	pt := newPublishTarget(t, 200, "Published\n")
	code, stdout, stderr := runWith("", pt.srv.URL, "--id", "2", "--prev-id", "1", "news", "hello")
	if code != 0 || stdout != "Published\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if pt.path != "/publish/" {
		t.Errorf("path %q, want /publish/", pt.path)
	}
	if ct := pt.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if pt.header.Get("Authorization") != "" {
		t.Errorf("Authorization sent without --key or --user")
	}
	want := map[string]any{
		"channel": "news", "id": "2", "prev-id": "1",
		"formats": map[string]any{
			"http-response": map[string]any{"body": "hello\n"},
			"http-stream":   map[string]any{"content": "hello\n"},
			"ws-message":    map[string]any{"content": "hello"},
		},
	}
	if got := pt.item(t); !reflect.DeepEqual(got, want) {
		t.Errorf("item\n got %v\nwant %v", got, want)
	}
}

func TestPublishCommandNoEOLAndStdin(t *testing.T) {
	pt := newPublishTarget(t, 200, "Published\n")
	// --url beats $GRIP_URL; a trailing slash on it is fine.
	code, _, stderr := runWith("from stdin\n", "http://127.0.0.1:1", "--url", pt.srv.URL+"/", "--no-eol", "c")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := map[string]any{
		"http-response": map[string]any{"body": "from stdin"},
		"http-stream":   map[string]any{"content": "from stdin"},
		"ws-message":    map[string]any{"content": "from stdin"},
	}
	if got := pt.item(t)["formats"]; !reflect.DeepEqual(got, want) {
		t.Errorf("formats\n got %v\nwant %v", got, want)
	}
	if _, ok := pt.item(t)["id"]; ok {
		t.Errorf("id sent without --id")
	}
}

func TestPublishCommandBinaryContent(t *testing.T) {
	pt := newPublishTarget(t, 200, "Published\n")
	if code, _, stderr := runWith("\xff\x00", pt.srv.URL, "--no-eol", "c"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b64 := base64.StdEncoding.EncodeToString([]byte("\xff\x00"))
	want := map[string]any{
		"http-response": map[string]any{"body-bin": b64},
		"http-stream":   map[string]any{"content-bin": b64},
		"ws-message":    map[string]any{"content-bin": b64},
	}
	if got := pt.item(t)["formats"]; !reflect.DeepEqual(got, want) {
		t.Errorf("formats\n got %v\nwant %v", got, want)
	}
}

func TestPublishCommandClose(t *testing.T) {
	pt := newPublishTarget(t, 200, "Published\n")
	if code, _, stderr := runWith("", pt.srv.URL, "--close", "c"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := map[string]any{
		"http-stream": map[string]any{"action": "close"},
		"ws-message":  map[string]any{"action": "close"},
	}
	if got := pt.item(t)["formats"]; !reflect.DeepEqual(got, want) {
		t.Errorf("formats\n got %v\nwant %v", got, want)
	}
}

func TestPublishCommandHintNoSeqSender(t *testing.T) {
	pt := newPublishTarget(t, 200, "Published\n")
	if code, _, stderr := runWith("", pt.srv.URL, "--hint", "--no-seq", "--sender", "alice", "c"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := map[string]any{
		"channel": "c", "no-seq": true, "meta": map[string]any{"sender": "alice"},
		"formats": map[string]any{
			"http-response": map[string]any{"action": "hint"},
			"http-stream":   map[string]any{"action": "hint"},
		},
	}
	if got := pt.item(t); !reflect.DeepEqual(got, want) {
		t.Errorf("item\n got %v\nwant %v", got, want)
	}
	if code, _, _ := runWith("", pt.srv.URL, "--hint", "--close", "c"); code != 2 {
		t.Errorf("--hint with --close: exit %d, want 2", code)
	}
}

func TestPublishCommandAuth(t *testing.T) {
	pt := newPublishTarget(t, 200, "Published\n")

	if code, _, stderr := runWith("", pt.srv.URL, "--key", "s3cret", "--iss", "me", "c", "x"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	bearer, ok := strings.CutPrefix(pt.header.Get("Authorization"), "Bearer ")
	if !ok {
		t.Fatalf("Authorization %q is not a bearer token", pt.header.Get("Authorization"))
	}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("me"), jwt.WithExpirationRequired())
	if _, err := parser.Parse(bearer, func(*jwt.Token) (any, error) { return []byte("s3cret"), nil }); err != nil {
		t.Errorf("token does not verify: %v", err)
	}

	if code, _, stderr := runWith("", pt.srv.URL, "--key", "base64:"+base64.StdEncoding.EncodeToString([]byte{1, 2, 3}), "c", "x"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	bearer, _ = strings.CutPrefix(pt.header.Get("Authorization"), "Bearer ")
	if _, err := jwt.Parse(bearer, func(*jwt.Token) (any, error) { return []byte{1, 2, 3}, nil }); err != nil {
		t.Errorf("base64 key: token does not verify: %v", err)
	}

	if code, _, stderr := runWith("", pt.srv.URL, "--user", "u:p", "c", "x"); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got, want := pt.header.Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte("u:p")); got != want {
		t.Errorf("Authorization %q, want %q", got, want)
	}
}

func TestPublishCommandFailures(t *testing.T) {
	pt := newPublishTarget(t, 400, "Invalid format: no formats specified\n")
	code, stdout, stderr := runWith("", pt.srv.URL, "c", "x")
	if code != 1 || stdout != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing", code, stdout)
	}
	if !strings.Contains(stderr, "400 Bad Request") || !strings.Contains(stderr, "Invalid format: no formats specified") {
		t.Errorf("stderr %q does not give the status and the body", stderr)
	}

	usage := [][]string{
		{},              // no channel
		{"a", "b", "c"}, // too many arguments
		{"--key", "k", "--user", "u:p", "c", "x"}, // both auths
		{"--iss", "me", "c", "x"},                 // iss without key
		{"--user", "nocolon", "c", "x"},           // user without password
		{"--nope", "c"},                           // unknown flag
	}
	for _, args := range usage {
		if code, _, _ := runWith("", pt.srv.URL, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}

	// Nothing listening.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	if code, _, stderr := runWith("", dead.URL, "c", "x"); code != 1 || stderr == "" {
		t.Errorf("unreachable server: exit %d, stderr %q", code, stderr)
	}
}
