package daemon_test

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/internal/config"
	"github.com/gripd/gripd/internal/daemon"
)

// A daemon in a test or a program of your own: build it, start its
// listeners, run it until the context ends (it then drains and closes).
func Example() {
	src := &config.Source{
		Routes:        []string{"* 127.0.0.1:8000"},
		Listen:        "127.0.0.1:0",
		ControlListen: "127.0.0.1:0",
		AdminListen:   "off",
		DrainDuration: "0s",
	}
	cfg, err := src.Load()
	if err != nil {
		panic(err)
	}
	d, err := daemon.New(cfg, daemon.Options{Log: zerolog.Nop(), Source: src})
	if err != nil {
		panic(err)
	}
	if err := d.Start(); err != nil {
		d.Close()
		panic(err)
	}
	fmt.Println("serving clients:", d.ClientAddr() != nil, "admin:", d.AdminAddr() != nil)

	ctx, stop := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer stop()
	fmt.Println("run:", d.Run(ctx, nil))
	// Output:
	// serving clients: true admin: false
	// run: <nil>
}
