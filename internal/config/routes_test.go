package config

import (
	"strings"
	"testing"
)

// A --route line that does not parse is quoted in the error with its
// sig_key redacted.
func TestRouteFlagErrorRedactsSigKey(t *testing.T) {
	_, err := ParseRouteLines([]string{"*,sig_key=supersecret,path_beg=nope 127.0.0.1:8000"})
	if err == nil {
		t.Fatal("a bad --route line was accepted")
	}
	if strings.Contains(err.Error(), "supersecret") || !strings.Contains(err.Error(), "sig_key=REDACTED") {
		t.Fatalf("error %q: want the line with its key redacted", err)
	}
}
