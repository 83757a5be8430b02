package publish

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gripd/gripd/grip"
	"github.com/gripd/gripd/handoff"
	"github.com/rs/zerolog"
)

// recordingBroker remembers every batch it is given, and fails with err
// when err is set.
type recordingBroker struct {
	mu      sync.Mutex
	batches [][]grip.Item
	err     error
}

func (b *recordingBroker) Publish(ctx context.Context, items []grip.Item) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	b.batches = append(b.batches, items)
	return nil
}

func (b *recordingBroker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.batches)
}

// testAPI starts the control API on a test server.
func testAPI(t *testing.T, cfg ControlConfig) (*httptest.Server, *recordingBroker) {
	t.Helper()
	broker := &recordingBroker{}
	srv := httptest.NewServer(NewControlAPI(cfg, broker, zerolog.Nop()))
	t.Cleanup(srv.Close)
	return srv, broker
}

// reply is what a test request got back.
type reply struct {
	code   int
	body   string
	header http.Header
}

// send makes one request; headers are name, value pairs.
func send(t *testing.T, srv *httptest.Server, method, path string, body io.Reader, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{code: resp.StatusCode, body: string(b), header: resp.Header}
}

func (r reply) check(t *testing.T, code int, body string) {
	t.Helper()
	if r.code != code || r.body != body {
		t.Errorf("got %d %q, want %d %q", r.code, r.body, code, body)
	}
}

const validBody = `{"items": [{"channel": "news", "formats": {"http-stream": {"content": "hi\n"}}}]}`

func TestControlAPIStatuses(t *testing.T) {
	srv, broker := testAPI(t, ControlConfig{})
	post := func(body string) reply { return send(t, srv, "POST", "/publish/", strings.NewReader(body)) }

	tests := []struct {
		name string
		got  func() reply
		code int
		body string
	}{
		{"banner", func() reply { return send(t, srv, "GET", "/", nil) }, 200, "Pushpin API\n"},
		{"valid", func() reply { return post(validBody) }, 200, "Published\n"},
		{"without trailing slash", func() reply { return send(t, srv, "POST", "/publish", strings.NewReader(validBody)) }, 200, "Published\n"},
		{"no items", func() reply { return post(`{"items": []}`) }, 200, "Published\n"},
		{"only an unknown format", func() reply { return post(`{"items": [{"channel": "c", "formats": {"x": {}}}]}`) }, 200, "Published\n"},
		{"malformed JSON", func() reply { return post(`{"items": [`) }, 400, "Body is not valid JSON.\n"},
		{"empty body", func() reply { return post(``) }, 400, "Body is not valid JSON.\n"},
		{"not an object", func() reply { return post(`[]`) }, 400, "Invalid format.\n"},
		{"no items key", func() reply { return post(`{}`) }, 400, "Invalid format: object does not contain 'items'\n"},
		{"items not an array", func() reply { return post(`{"items": 1}`) }, 400, "Invalid format: object contains 'items' with wrong type\n"},
		{"no channel", func() reply { return post(`{"items": [{"http-stream": {"content": "x"}}]}`) }, 400,
			"Invalid format: publish item object does not contain 'channel'\n"},
		{"channel not a string", func() reply { return post(`{"items": [{"channel": 1, "http-stream": {"content": "x"}}]}`) }, 400,
			"Invalid format: publish item object contains 'channel' with wrong type\n"},
		{"id not a string", func() reply { return post(`{"items": [{"channel": "c", "id": 1, "http-stream": {"content": "x"}}]}`) }, 400,
			"Invalid format: publish item object contains 'id' with wrong type\n"},
		{"no format", func() reply { return post(`{"items": [{"channel": "c"}]}`) }, 400, "Invalid format: no formats specified\n"},
		{"stream without content", func() reply { return post(`{"items": [{"channel": "c", "http-stream": {}}]}`) }, 400,
			"Invalid format: 'http-stream' does not contain 'content' or 'content-bin'\n"},
		{"stream content not a string", func() reply { return post(`{"items": [{"channel": "c", "http-stream": {"content": []}}]}`) }, 400,
			"Invalid format: 'http-stream' contains 'content' with wrong type\n"},
		{"response without body", func() reply { return post(`{"items": [{"channel": "c", "http-response": {}}]}`) }, 400,
			"Invalid format: 'http-response' does not contain 'body', 'body-bin', or 'body-patch'\n"},
		{"response headers a string", func() reply {
			return post(`{"items": [{"channel": "c", "http-response": {"headers": "x", "body": ""}}]}`)
		}, 400, "Invalid format: 'http-response' contains 'headers' with wrong type\n"},
		{"ws without content", func() reply { return post(`{"items": [{"channel": "c", "ws-message": {}}]}`) }, 400,
			"Invalid format: 'ws-message' does not contain 'content' or 'content-bin'\n"},
		{"GET on publish", func() reply { return send(t, srv, "GET", "/publish/", nil) }, 405, "Method not allowed: GET.\n"},
		{"PUT on publish", func() reply { return send(t, srv, "PUT", "/publish", strings.NewReader(validBody)) }, 405, "Method not allowed: PUT.\n"},
		{"unknown path", func() reply { return send(t, srv, "GET", "/nope", nil) }, 404, "Not Found\n"},
		{"below publish", func() reply { return send(t, srv, "POST", "/publish/x", strings.NewReader(validBody)) }, 404, "Not Found\n"},
		{"recover with a broker that cannot", func() reply { return send(t, srv, "POST", "/recover", nil) }, 404, "Not Found\n"},
		{"form content type is ignored", func() reply {
			return send(t, srv, "POST", "/publish/", strings.NewReader(validBody), "Content-Type", "application/x-www-form-urlencoded")
		}, 200, "Published\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.got()
			r.check(t, tt.code, tt.body)
			if ct := r.header.Get("Content-Type"); ct != "text/plain" {
				t.Errorf("Content-Type %q, want text/plain", ct)
			}
			if tt.code == 405 && r.header.Get("Allow") != "POST" {
				t.Errorf("Allow %q, want POST", r.header.Get("Allow"))
			}
			if tt.code == 200 && r.header.Get("Connection") != "" {
				t.Errorf("Connection %q, want none (keep-alive)", r.header.Get("Connection"))
			}
		})
	}

	// Four valid publishes above reached the broker; "no items" did not
	// need it, and no refused body reached it.
	if n := broker.count(); n != 4 {
		t.Errorf("broker got %d batches, want 4", n)
	}
}

func TestControlAPIDeliversParsedItems(t *testing.T) {
	srv, broker := testAPI(t, ControlConfig{})
	body := `{"items": [{"channel": "a", "id": "1", "http-stream": {"content": "x"}}, {"channel": "b", "ws-message": {"content": "y"}}]}`
	send(t, srv, "POST", "/publish/", strings.NewReader(body)).check(t, 200, "Published\n")
	if broker.count() != 1 {
		t.Fatalf("broker got %d batches, want 1", broker.count())
	}
	items := broker.batches[0]
	if len(items) != 2 || items[0].Channel != "a" || items[0].ID != "1" || string(items[0].HTTPStream.Content) != "x" ||
		items[1].Channel != "b" || string(items[1].WSMessage.Content) != "y" {
		t.Errorf("broker got %+v", items)
	}
}

func TestControlAPIAllOrNothing(t *testing.T) {
	srv, broker := testAPI(t, ControlConfig{})
	bad := `{"items": [{"channel": "a", "http-stream": {"content": "x"}}, {"channel": "b", "http-stream": {"content": 1}}]}`
	send(t, srv, "POST", "/publish/", strings.NewReader(bad)).
		check(t, 400, "Invalid format: 'http-stream' contains 'content' with wrong type\n")
	if n := broker.count(); n != 0 {
		t.Fatalf("broker got %d batches from a refused body", n)
	}

	// A valid publish after the bad one goes through.
	send(t, srv, "POST", "/publish/", strings.NewReader(validBody)).check(t, 200, "Published\n")
	if n := broker.count(); n != 1 || broker.batches[0][0].Channel != "news" {
		t.Errorf("broker got %d batches, want the one valid publish", n)
	}
}

func TestControlAPIBodyLimit(t *testing.T) {
	t.Run("default limit, declared length", func(t *testing.T) {
		srv, broker := testAPI(t, ControlConfig{})
		big := strings.Repeat(" ", DefaultMaxBodyBytes+1)
		send(t, srv, "POST", "/publish/", strings.NewReader(big)).check(t, 400, "Request body too large.\n")
		// Exactly at the limit is fine (a valid body padded with spaces).
		atLimit := validBody + strings.Repeat(" ", DefaultMaxBodyBytes-len(validBody))
		send(t, srv, "POST", "/publish/", strings.NewReader(atLimit)).check(t, 200, "Published\n")
		if broker.count() != 1 {
			t.Errorf("broker got %d batches, want 1", broker.count())
		}
	})
	t.Run("small limit, chunked", func(t *testing.T) {
		srv, broker := testAPI(t, ControlConfig{MaxBodyBytes: 100})
		// An io.Reader that is not a strings.Reader has no known length,
		// so the client sends it chunked.
		chunked := func(s string) io.Reader { return io.MultiReader(strings.NewReader(s)) }
		send(t, srv, "POST", "/publish/", chunked(validBody+strings.Repeat(" ", 100))).check(t, 400, "Request body too large.\n")
		// gripd takes a chunked body within the limit (Pushpin answers 411).
		send(t, srv, "POST", "/publish/", chunked(validBody)).check(t, 200, "Published\n")
		if broker.count() != 1 {
			t.Errorf("broker got %d batches, want 1", broker.count())
		}
	})
}

func TestControlAPIAccept(t *testing.T) {
	srv, _ := testAPI(t, ControlConfig{})
	tests := []struct {
		accept string
		code   int
		body   string
		ctype  string
	}{
		{"", 200, "Published\n", "text/plain"},
		{"text/plain", 200, "Published\n", "text/plain"},
		{"*/*", 200, "Published\n", "text/plain"},
		{"text/*", 200, "Published\n", "text/plain"},
		{"application/json", 200, `{"message":"Published"}` + "\n", "application/json"},
		{"application/*", 200, `{"message":"Published"}` + "\n", "application/json"},
		{"text/html, application/json;q=0.5", 200, `{"message":"Published"}` + "\n", "application/json"},
		{"text/html", 406, "Not Acceptable. Supported formats are text/plain and application/json.\n", "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			var headers []string
			if tt.accept != "" {
				headers = []string{"Accept", tt.accept}
			}
			r := send(t, srv, "POST", "/publish/", strings.NewReader(validBody), headers...)
			r.check(t, tt.code, tt.body)
			if ct := r.header.Get("Content-Type"); ct != tt.ctype {
				t.Errorf("Content-Type %q, want %q", ct, tt.ctype)
			}
		})
	}

	// Only the success is negotiated; an error stays text/plain.
	r := send(t, srv, "POST", "/publish/", strings.NewReader(`{}`), "Accept", "application/json")
	r.check(t, 400, "Invalid format: object does not contain 'items'\n")
	if ct := r.header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("error Content-Type %q, want text/plain", ct)
	}
}

func TestControlAPIBrokerError(t *testing.T) {
	srv, broker := testAPI(t, ControlConfig{})
	broker.err = errors.New("nats: no responders")
	send(t, srv, "POST", "/publish/", strings.NewReader(validBody)).
		check(t, 503, "Publish failed: nats: no responders\n")
}

// token signs GRIP-library-style claims {iss, exp} with key.
func token(t *testing.T, method jwt.SigningMethod, key []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestControlAPIAuth(t *testing.T) {
	key := []byte("s3cret")
	future := time.Now().Add(10 * time.Minute).Unix()
	past := time.Now().Add(-10 * time.Minute).Unix()
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}

	tests := []struct {
		name          string
		auth          Auth
		authorization string
		code          int
		challenge     string
	}{
		{"open by default", Auth{}, "", 200, ""},
		{"bearer, right key", Auth{JWTKey: key}, "Bearer " + token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"iss": "pub", "exp": future}), 200, ""},
		{"bearer, no exp", Auth{JWTKey: key}, "Bearer " + token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"iss": "pub"}), 200, ""},
		{"bearer, no exp, exp required", Auth{JWTKey: key, RequireExp: true}, "Bearer " + token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"iss": "pub"}), 401, "Bearer"},
		{"bearer, exp required", Auth{JWTKey: key, RequireExp: true}, "Bearer " + token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"exp": future}), 200, ""},
		{"bearer, lower-case scheme", Auth{JWTKey: key}, "bearer " + token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"exp": future}), 200, ""},
		{"bearer, wrong key", Auth{JWTKey: key}, "Bearer " + token(t, jwt.SigningMethodHS256, []byte("other"), jwt.MapClaims{"exp": future}), 401, "Bearer"},
		{"bearer, expired", Auth{JWTKey: key}, "Bearer " + token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"exp": past}), 401, "Bearer"},
		{"bearer, HS512", Auth{JWTKey: key}, "Bearer " + token(t, jwt.SigningMethodHS512, key, jwt.MapClaims{"exp": future}), 401, "Bearer"},
		{"bearer, garbage", Auth{JWTKey: key}, "Bearer not.a.jwt", 401, "Bearer"},
		{"bearer, missing", Auth{JWTKey: key}, "", 401, "Bearer"},
		{"bearer, right iss", Auth{JWTKey: key, JWTIss: "pub"}, "Bearer " + token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"iss": "pub", "exp": future}), 200, ""},
		{"bearer, wrong iss", Auth{JWTKey: key, JWTIss: "pub"}, "Bearer " + token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"iss": "other", "exp": future}), 401, "Bearer"},
		{"bearer, no iss", Auth{JWTKey: key, JWTIss: "pub"}, "Bearer " + token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"exp": future}), 401, "Bearer"},
		{"basic only refuses a bearer", Auth{Username: "u", Password: "p"}, "Bearer " + token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"exp": future}), 401, "Basic"},
		{"basic, right", Auth{Username: "u", Password: "p"}, basic("u", "p"), 200, ""},
		{"basic, wrong password", Auth{Username: "u", Password: "p"}, basic("u", "x"), 401, "Basic"},
		{"basic, wrong user", Auth{Username: "u", Password: "p"}, basic("x", "p"), 401, "Basic"},
		{"basic, missing", Auth{Username: "u", Password: "p"}, "", 401, "Basic"},
		{"both, basic accepted", Auth{JWTKey: key, Username: "u", Password: "p"}, basic("u", "p"), 200, ""},
		{"both, bearer accepted", Auth{JWTKey: key, Username: "u", Password: "p"}, "Bearer " + token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"exp": future}), 200, ""},
		{"both, missing", Auth{JWTKey: key, Username: "u", Password: "p"}, "", 401, "Bearer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, broker := testAPI(t, ControlConfig{Auth: tt.auth})
			var headers []string
			if tt.authorization != "" {
				headers = []string{"Authorization", tt.authorization}
			}
			r := send(t, srv, "POST", "/publish/", strings.NewReader(validBody), headers...)
			if tt.code == 200 {
				r.check(t, 200, "Published\n")
				if broker.count() != 1 {
					t.Errorf("broker got %d batches, want 1", broker.count())
				}
				return
			}
			r.check(t, 401, "Unauthorized\n")
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, tt.challenge) {
				t.Errorf("WWW-Authenticate %q, want %s", got, tt.challenge)
			}
			if broker.count() != 0 {
				t.Errorf("broker got a batch from a refused publish")
			}
		})
	}

	// GET / stays open when auth is on.
	srv, _ := testAPI(t, ControlConfig{Auth: Auth{JWTKey: key}})
	send(t, srv, "GET", "/", nil).check(t, 200, "Pushpin API\n")
}

func TestLocalBroker(t *testing.T) {
	items := []grip.Item{{Channel: "c"}}
	if err := (LocalBroker{}).Publish(context.Background(), items); err == nil {
		t.Error("no error without a hub")
	}
	if err := (LocalBroker{Hub: handoff.NewHub(handoff.Config{})}).Publish(context.Background(), items); err != nil {
		t.Errorf("error: %v", err)
	}
	var _ Broker = LocalBroker{}
}

func TestControlAPIPublishStats(t *testing.T) {
	broker := &recordingBroker{}
	api := NewControlAPI(ControlConfig{Auth: Auth{Username: "u", Password: "p"}}, broker, zerolog.Nop())
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	basic := "Basic dTpw" // u:p
	send(t, srv, "POST", "/publish/", strings.NewReader(validBody), "Authorization", basic).check(t, 200, "Published\n")
	send(t, srv, "POST", "/publish/", strings.NewReader(validBody), "Authorization", basic).check(t, 200, "Published\n")
	send(t, srv, "POST", "/publish/", strings.NewReader(validBody)).check(t, 401, "Unauthorized\n")
	send(t, srv, "POST", "/publish/", strings.NewReader("{"), "Authorization", basic)
	send(t, srv, "GET", "/publish/", nil, "Authorization", basic) // 405: not counted
	broker.mu.Lock()
	broker.err = errors.New("down")
	broker.mu.Unlock()
	send(t, srv, "POST", "/publish/", strings.NewReader(validBody), "Authorization", basic).check(t, 503, "Publish failed: down\n")

	want := PublishStats{OK: 2, BadRequest: 1, Unauthorized: 1, Failed: 1}
	if got := api.PublishStats(); got != want {
		t.Fatalf("PublishStats() = %+v, want %+v", got, want)
	}
}

// While delivery runs further behind than MaxLag, a publish is refused
// with 503 and Retry-After, nothing reaches the broker, and it is counted;
// once delivery has caught up, publishes go through again.
func TestPublishRefusedWhileDeliveryIsBehind(t *testing.T) {
	var lag atomic.Int64
	lag.Store(int64(3 * time.Second))
	broker := &recordingBroker{}
	api := NewControlAPI(ControlConfig{Lag: func() time.Duration { return time.Duration(lag.Load()) }, MaxLag: 2 * time.Second}, broker, zerolog.Nop())
	srv := httptest.NewServer(api)
	defer srv.Close()

	r := send(t, srv, "POST", "/publish/", strings.NewReader(validBody))
	r.check(t, 503, "Delivery is 3s behind; retry later.\n")
	if got := r.header.Get("Retry-After"); got != "1" {
		t.Fatalf("Retry-After %q", got)
	}
	if broker.count() != 0 {
		t.Fatal("a refused publish reached the broker")
	}
	// An empty publish has nothing to deliver and is not refused.
	send(t, srv, "POST", "/publish/", strings.NewReader(`{"items":[]}`)).check(t, 200, "Published\n")

	lag.Store(int64(time.Second))
	send(t, srv, "POST", "/publish/", strings.NewReader(validBody)).check(t, 200, "Published\n")
	if broker.count() != 1 {
		t.Fatalf("%d batches reached the broker", broker.count())
	}
	if st := api.PublishStats(); st.Behind != 1 || st.Failed != 0 || st.OK != 2 {
		t.Fatalf("stats %+v", st)
	}

	// A reload can turn the limit off.
	lag.Store(int64(time.Hour))
	api.SetMaxLag(0)
	send(t, srv, "POST", "/publish/", strings.NewReader(validBody)).check(t, 200, "Published\n")
}

// With no auth, a request a web page made (Origin, Sec-Fetch-Site) is
// refused, so a page cannot publish through an open control API it
// reaches; publishers' requests, whatever their Content-Type, pass, and so
// do browsers' when allowed or when credentials are required.
func TestControlAPIRefusesBrowserRequestsWhileOpen(t *testing.T) {
	const forbidden = "Forbidden: requests from web pages are refused while the control API has no auth.\n"
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p"))
	tests := []struct {
		name    string
		auth    Auth
		path    string
		headers []string
		code    int
	}{
		{"curl -d (form type)", Auth{}, "/publish/", []string{"Content-Type", "application/x-www-form-urlencoded"}, 200},
		{"GRIP library (JSON)", Auth{}, "/publish/", []string{"Content-Type", "application/json"}, 200},
		{"text/plain, no browser headers", Auth{}, "/publish/", []string{"Content-Type", "text/plain"}, 200},
		{"typed into the address bar", Auth{}, "/publish/", []string{"Sec-Fetch-Site", "none"}, 200},
		{"page form post", Auth{}, "/publish/", []string{"Origin", "https://evil.example", "Content-Type", "text/plain"}, 403},
		{"opaque origin", Auth{}, "/publish/", []string{"Origin", "null"}, 403},
		{"same-site fetch", Auth{}, "/publish/", []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"recover from a page", Auth{}, "/recover", []string{"Origin", "https://evil.example"}, 403},
		{"allowed", Auth{AllowBrowsers: true}, "/publish/", []string{"Origin", "https://admin.example"}, 200},
		{"auth on, credentials", Auth{Username: "u", Password: "p"}, "/publish/", []string{"Origin", "https://admin.example", "Authorization", basic}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub := handoff.NewHub(handoff.Config{})
			defer hub.Close()
			srv := httptest.NewServer(NewControlAPI(ControlConfig{Auth: tt.auth}, LocalBroker{Hub: hub}, zerolog.Nop()))
			defer srv.Close()
			r := send(t, srv, "POST", tt.path, strings.NewReader(validBody), tt.headers...)
			if r.code != tt.code {
				t.Fatalf("got %d %q, want %d", r.code, r.body, tt.code)
			}
			if tt.code == 403 && r.body != forbidden {
				t.Fatalf("body %q", r.body)
			}
		})
	}
}
