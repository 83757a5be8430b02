package config_test

import (
	"fmt"

	"github.com/gripd/gripd/internal/config"
)

// A configuration is parsed on top of the defaults; an error gives the
// line and the key.
func ExampleParse() {
	cfg, err := config.Parse([]byte(`
limits:
  max_request_body: 1MiB
routes:
  - match: {path_prefix: /api/}
    backends: ["http://127.0.0.1:8000"]
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.Listen, cfg.Limits.MaxRequestBody, cfg.Routes[0].ID, cfg.Routes[0].Backends[0].URL)

	_, err = config.Parse([]byte("limits:\n  max_channels: 0\n"))
	fmt.Println(err)
	// Output:
	// :7999 1048576 *,/api/ http://127.0.0.1:8000
	// line 2: limits.max_channels 0: must be at least 1
}

// Diff tells which keys changed and whether each needs a restart.
func ExampleDiff() {
	running, _ := config.Parse([]byte("backend_timeout: 30s\n"))
	next, _ := config.Parse([]byte("backend_timeout: 10s\nlisten: \":8080\"\n"))
	changes, _ := config.Diff(running, next)
	for _, c := range changes {
		fmt.Println(c.Key, "restart:", c.Restart)
	}
	// Output:
	// listen restart: true
	// backend_timeout restart: false
}
