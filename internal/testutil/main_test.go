package testutil

import (
	"testing"

	"github.com/gripd/gripd/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }
