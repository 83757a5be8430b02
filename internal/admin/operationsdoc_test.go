package admin

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/proxy"
)

// docs/operations.md's metrics table names every gripd_ metric gripd
// exports, and no metric it does not: a metric added or renamed fails
// this test, which names it.
func TestOperationsDocMetrics(t *testing.T) {
	data, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	// Rows of the metrics table: | `gripd_name{labels}` | type | meaning |
	row := regexp.MustCompile("(?m)^\\|\\s*`(gripd_[a-z_]+)[{`]")
	var documented []string
	for _, m := range row.FindAllStringSubmatch(string(data), -1) {
		documented = append(documented, m[1])
	}

	// Every series exists once something has happened on a route.
	f := testAdmin(t, &fakeNATS{})
	f.met.proxy.HoldStarted("r", handoff.KindStream)
	f.met.proxy.BackendRequest("r", 200, "", time.Millisecond)
	f.met.proxy.WebSocketOverHTTP("r", proxy.WSResultOK)
	f.met.ConfigReloaded(true)
	f.met.WatchClientListener(fakeClientConns{}, 10)
	families, err := f.met.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var exported []string
	for _, mf := range families {
		if name := mf.GetName(); strings.HasPrefix(name, "gripd_") {
			exported = append(exported, name)
		}
	}
	if len(exported) < 10 {
		t.Fatalf("only %d gripd_ metrics gathered: %v", len(exported), exported)
	}
	for _, name := range exported {
		if !slices.Contains(documented, name) {
			t.Errorf("docs/operations.md's metrics table lacks %s; add a row (| `%s{labels}` | type | meaning |)", name, name)
		}
	}
	for _, name := range documented {
		if !slices.Contains(exported, name) {
			t.Errorf("docs/operations.md documents %s, which gripd does not export", name)
		}
	}
}

// fakeClientConns stands for the client listener in metrics tests.
type fakeClientConns struct{}

func (fakeClientConns) Open() int64     { return 1 }
func (fakeClientConns) Rejected() int64 { return 0 }
