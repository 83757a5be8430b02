package main

import (
	"fmt"

	"github.com/gripd/gripd/proxy"
)

// configSource is where gripd's configuration comes from: the config file
// (if any) and the flags that override parts of it. A reload reads it
// again the same way, so a flag keeps winning over the file after one.
type configSource struct {
	path   string   // --config; "" means defaults and flags only
	routes []string // --route lines; when given they replace the file's routes

	listen, controlListen, adminListen string
	sigIss, sigKey                     string
	natsURL, natsEmbedded              string
	drainDuration                      string
}

// load reads the file, applies the flags and builds the route table.
// Errors are ready to show as they are.
func (src *configSource) load() (*Config, *proxy.Table, error) {
	cfg := DefaultConfig()
	if src.path != "" {
		var err error
		if cfg, err = LoadConfig(src.path); err != nil {
			return nil, nil, err
		}
	}
	if len(src.routes) > 0 {
		cfg.Routes = nil
		for _, line := range src.routes {
			r, err := proxy.ParseRouteLine(line)
			if err != nil {
				return nil, nil, fmt.Errorf("--route %q: %w", line, err)
			}
			cfg.Routes = append(cfg.Routes, r)
		}
	}
	if src.listen != "" {
		cfg.Listen = src.listen
	}
	if src.controlListen != "" {
		cfg.Control.Listen = src.controlListen
	}
	if src.sigIss != "" {
		cfg.Signing.Iss = src.sigIss
	}
	if src.sigKey != "" {
		key, err := proxy.ParseKey(src.sigKey)
		if err != nil {
			return nil, nil, fmt.Errorf("--sig-key: %w", err)
		}
		cfg.Signing.Key = key
	}
	if src.natsURL != "" {
		cfg.NATS.Client.URL = src.natsURL
	}
	if src.natsEmbedded != "" {
		cfg.NATS.Embedded.Listen = src.natsEmbedded
	}
	if src.adminListen != "" {
		listen, err := adminListen(src.adminListen)
		if err != nil {
			return nil, nil, fmt.Errorf("--admin-listen: %w", err)
		}
		cfg.Admin.Listen = listen
	}
	if src.drainDuration != "" {
		d, err := parseDrainDuration(src.drainDuration)
		if err != nil {
			return nil, nil, fmt.Errorf("--drain-duration %w", err)
		}
		cfg.Drain.Duration = d
	}
	if len(cfg.Routes) == 0 {
		return nil, nil, fmt.Errorf("no routes: give --config FILE or --route 'SPEC' (e.g. --route '* 127.0.0.1:8000')")
	}
	table, err := proxy.NewTable(cfg.Routes)
	if err != nil {
		return nil, nil, err
	}
	return cfg, table, nil
}
