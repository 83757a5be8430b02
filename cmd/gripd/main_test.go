package main

import (
	"strings"
	"testing"

	"github.com/gripd/gripd/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestAdminListenFlag(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"--route", "* 127.0.0.1:8000", "--admin-listen", "nope", "--check"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "--admin-listen") {
		t.Errorf("--admin-listen nope: exit %d, stderr %q", code, errOut.String())
	}
	if code := run([]string{"--route", "* 127.0.0.1:8000", "--admin-listen", "off", "--check"}, &out, &errOut); code != 0 {
		t.Errorf("--admin-listen off: exit %d, stderr %q", code, errOut.String())
	}
}
