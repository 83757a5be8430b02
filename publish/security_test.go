package publish

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestControlAPIAuth already refuses a token signed with the wrong key,
// an expired one, a wrong or missing iss and a missing token. These are
// the forgeries it does not cover: a token whose claims were edited after
// signing, a token with its signature cut or altered, and alg "none".
func TestControlAPIAuthRefusesForgedTokens(t *testing.T) {
	key := []byte("s3cret")
	auth := Auth{JWTKey: key, JWTIss: "pub"}
	past := time.Now().Add(-10 * time.Minute).Unix()
	expired := token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"iss": "pub", "exp": past})
	head, _, _ := strings.Cut(expired, ".")
	sig := expired[strings.LastIndex(expired, ".")+1:]
	b64 := base64.RawURLEncoding.EncodeToString
	future := time.Now().Add(10 * time.Minute).Unix()
	edited := head + "." + b64([]byte(`{"iss":"pub","exp":`+strconv.FormatInt(future, 10)+`}`)) + "." + sig
	valid := token(t, jwt.SigningMethodHS256, key, jwt.MapClaims{"iss": "pub", "exp": future})
	flipped := []byte(valid)
	if flipped[len(flipped)-2] == 'A' {
		flipped[len(flipped)-2] = 'B'
	} else {
		flipped[len(flipped)-2] = 'A'
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": "pub", "exp": future}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}

	for name, tok := range map[string]string{
		"claims edited after signing": edited,
		"signature altered":           string(flipped),
		"signature cut":               valid[:strings.LastIndex(valid, ".")+1],
		"alg none":                    none,
	} {
		t.Run(name, func(t *testing.T) {
			srv, broker := testAPI(t, ControlConfig{Auth: auth})
			send(t, srv, "POST", "/publish/", strings.NewReader(validBody), "Authorization", "Bearer "+tok).
				check(t, 401, "Unauthorized\n")
			if broker.count() != 0 {
				t.Error("broker got a batch from a refused publish")
			}
		})
	}
	// The valid token the forgeries came from is accepted: the 401s above
	// are the forgeries', not a broken setup's.
	srv, _ := testAPI(t, ControlConfig{Auth: auth})
	send(t, srv, "POST", "/publish/", strings.NewReader(validBody), "Authorization", "Bearer "+valid).
		check(t, 200, "Published\n")
}
