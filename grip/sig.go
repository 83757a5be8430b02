package grip

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SigLifetime is how long a Grip-Sig token is valid, as Pushpin signs it.
const SigLifetime = time.Hour

// Signer makes Grip-Sig tokens: HS256 JWTs with iss and exp claims. A
// token is made at most once per second and shared by every request of
// that second, since signing on every request would cost more than the
// forwarding itself.
type Signer struct {
	iss string
	key []byte
	cur atomic.Pointer[signedToken]
}

type signedToken struct {
	second int64
	token  string
}

// NewSigner returns a Signer for issuer iss and key. An empty key gives a
// Signer whose tokens are empty (no Grip-Sig is sent).
func NewSigner(iss string, key []byte) *Signer {
	return &Signer{iss: iss, key: key}
}

// Token returns the Grip-Sig token valid from now, or "" with no key.
func (s *Signer) Token(now time.Time) (string, error) {
	if len(s.key) == 0 {
		return "", nil
	}
	sec := now.Unix()
	if t := s.cur.Load(); t != nil && t.second == sec {
		return t.token, nil
	}
	claims := jwt.MapClaims{"iss": s.iss, "exp": sec + int64(SigLifetime/time.Second)}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("signing Grip-Sig: %w", err)
	}
	s.cur.Store(&signedToken{second: sec, token: tok})
	return tok, nil
}

// ValidateSig checks an HS256 token against key: the signature and, when
// present, exp. It returns the token's iss claim.
func ValidateSig(token string, key []byte) (iss string, err error) {
	if len(key) == 0 {
		return "", errors.New("no key to check the signature with")
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}))
	if err != nil {
		return "", err
	}
	iss, _ = claims["iss"].(string)
	return iss, nil
}
