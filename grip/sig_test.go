package grip

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// decodeJWTPart decodes one base64url segment of a JWT into a map,
// keeping numbers as json.Number so exp can be compared exactly.
func decodeJWTPart(t *testing.T, token string, part int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts, want 3", token, len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[part])
	if err != nil {
		t.Fatalf("segment %d of %q: %v", part, token, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("segment %d %s: %v", part, raw, err)
	}
	return m
}

func TestSignerTokenIsAValidGripSig(t *testing.T) {
	key := []byte("changeme")
	now := time.Now().Truncate(time.Second)
	tok, err := NewSigner("pushpin", key).Token(now)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ValidateSig(tok, key)
	if err != nil {
		t.Fatalf("ValidateSig(own token): %v", err)
	}
	if iss != "pushpin" {
		t.Errorf("iss = %q, want pushpin", iss)
	}

	header := decodeJWTPart(t, tok, 0)
	if want := map[string]any{"alg": "HS256", "typ": "JWT"}; !reflect.DeepEqual(header, want) {
		t.Errorf("JWT header = %v, want %v", header, want)
	}
	claims := decodeJWTPart(t, tok, 1)
	wantClaims := map[string]any{
		"iss": "pushpin",
		"exp": json.Number(itoa64(now.Unix() + 3600)),
	}
	if !reflect.DeepEqual(claims, wantClaims) {
		t.Errorf("claims = %v, want exactly %v", claims, wantClaims)
	}
}

func itoa64(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestSignerReusesTokenWithinASecond(t *testing.T) {
	s := NewSigner("iss", []byte("k"))
	sec := time.Now().Truncate(time.Second)
	first, err := s.Token(sec)
	if err != nil {
		t.Fatal(err)
	}
	same, err := s.Token(sec.Add(999 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if same != first {
		t.Errorf("token changed within the same second:\n%s\n%s", first, same)
	}
	next, err := s.Token(sec.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if next == first {
		t.Fatal("the next second gave the same token")
	}
	exp, err := decodeJWTPart(t, next, 1)["exp"].(json.Number).Int64()
	if err != nil || exp != sec.Unix()+1+3600 {
		t.Errorf("next token exp = %d (%v), want %d", exp, err, sec.Unix()+1+3600)
	}
	// Going back to a second already seen signs again rather than handing
	// out the newer token: exp must follow the time asked for.
	back, err := s.Token(sec)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := decodeJWTPart(t, back, 1)["exp"].(json.Number).Int64(); got != sec.Unix()+3600 {
		t.Errorf("token for an earlier second has exp %d, want %d", got, sec.Unix()+3600)
	}
}

func TestSignerConcurrentUse(t *testing.T) {
	key := []byte("k")
	s := NewSigner("iss", key)
	now := time.Now()
	const n = 16
	toks := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tok, err := s.Token(now)
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		})
	}
	wg.Wait()
	for _, tok := range toks {
		// Several goroutines may sign the same second at once; every
		// token must still be a valid one for that second.
		if _, err := ValidateSig(tok, key); err != nil {
			t.Errorf("token %q: %v", tok, err)
		}
	}
}

func TestSignerEmptyKey(t *testing.T) {
	for _, key := range [][]byte{nil, {}} {
		tok, err := NewSigner("pushpin", key).Token(time.Now())
		if tok != "" || err != nil {
			t.Errorf("Token with key %q = %q, %v; want \"\", nil", key, tok, err)
		}
	}
}

func TestValidateSigRejects(t *testing.T) {
	key := []byte("right key")
	now := time.Now()
	good, err := NewSigner("pushpin", key).Token(now)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := NewSigner("pushpin", key).Token(now.Add(-2 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(m jwt.SigningMethod, k any, claims jwt.MapClaims) string {
		t.Helper()
		s, err := jwt.NewWithClaims(m, claims).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := jwt.MapClaims{"iss": "pushpin", "exp": now.Add(time.Hour).Unix()}
	algNone := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid)
	hs512 := sign(jwt.SigningMethodHS512, key, valid)
	parts := strings.Split(good, ".")
	otherClaims := base64.RawURLEncoding.EncodeToString([]byte(`{"exp":` + itoa64(now.Add(time.Hour).Unix()) + `,"iss":"mallory"}`))
	tampered := parts[0] + "." + otherClaims + "." + parts[2]

	tests := []struct {
		name  string
		token string
		key   []byte
	}{
		{"wrong key", good, []byte("wrong key")},
		{"expired", expired, key},
		{"alg none", algNone, key},
		{"alg none with the signature stripped", strings.TrimSuffix(algNone, "."), key},
		{"another HMAC alg", hs512, key},
		{"tampered claims", tampered, key},
		{"empty token", "", key},
		{"garbage", "not.a.jwt", key},
		{"no key", good, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, err := ValidateSig(tt.token, tt.key)
			if err == nil {
				t.Fatalf("ValidateSig accepted it (iss %q)", iss)
			}
			if iss != "" {
				t.Errorf("iss = %q along with error %v", iss, err)
			}
		})
	}

	// Control: the same key and a fresh token do pass.
	if _, err := ValidateSig(good, key); err != nil {
		t.Fatalf("good token rejected: %v", err)
	}
}

func TestValidateSigWithoutExp(t *testing.T) {
	key := []byte("k")
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": "backend"}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ValidateSig(tok, key)
	if err != nil || iss != "backend" {
		t.Errorf("ValidateSig = %q, %v; want backend, nil (exp is checked only when present)", iss, err)
	}
}
