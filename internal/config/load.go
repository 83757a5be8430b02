package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"

	"github.com/gripd/gripd/proxy"
)

// Load reads and checks the YAML file at path. Errors start with the path
// and give the line, like a compiler's.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse checks a YAML configuration and builds it on top of Default.
// Unknown keys are errors (a misspelt key silently ignored is a
// misconfiguration nobody notices), and so is anything the route table
// would reject, so that a bad file fails at load time with the line to
// fix rather than at the first request.
func Parse(data []byte) (*Config, error) {
	decoder := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decoder.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return Default(), nil // an empty file
		}
		return nil, describeYAMLError(err)
	}
	var extra yaml.Node
	switch err := decoder.Decode(&extra); {
	case err == nil:
		return nil, fmt.Errorf("line %d: the file must hold one YAML document", extra.Line)
	case !errors.Is(err, io.EOF):
		return nil, describeYAMLError(err)
	}
	cfg := Default()
	if len(doc.Content) == 0 {
		return cfg, nil
	}
	if err := decode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "", reflect.StructField{}); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Source is where the configuration comes from: the file (if any) and the
// flags that override parts of it. A reload reads it again the same way,
// so a flag keeps winning over the file after one. Empty fields are flags
// not given.
type Source struct {
	Path   string   // --config; "" means defaults and flags only
	Routes []string // --route lines; when given they replace the file's routes

	Listen        string // --listen
	ControlListen string // --control-listen
	AdminListen   string // --admin-listen
	SigIss        string // --sig-iss
	SigKey        string // --sig-key
	NATSURL       string // --nats
	NATSEmbedded  string // --nats-embedded
	DrainDuration string // --drain-duration
}

// Load reads the file, lays the flags over it and checks that there is a
// valid route table. Errors are ready to show as they are.
func (src *Source) Load() (*Config, error) {
	cfg := Default()
	if src.Path != "" {
		var err error
		if cfg, err = Load(src.Path); err != nil {
			return nil, err
		}
	}
	if len(src.Routes) > 0 {
		routes, err := ParseRouteLines(src.Routes)
		if err != nil {
			return nil, err
		}
		cfg.Routes = routes
	}
	if err := src.applyFlags(cfg); err != nil {
		return nil, err
	}
	if len(cfg.Routes) == 0 {
		return nil, errNoRoutes
	}
	if _, err := proxy.NewTable(cfg.Routes); err != nil {
		return nil, err
	}
	return cfg, nil
}

// applyFlags sets what the flags give, each parsed as its key would be.
func (src *Source) applyFlags(cfg *Config) error {
	flags := []struct {
		name, text string
		dst        value
	}{
		{"listen", src.Listen, &cfg.Listen},
		{"control-listen", src.ControlListen, &cfg.Control.Listen},
		{"admin-listen", src.AdminListen, &cfg.Admin.Listen},
		{"sig-key", src.SigKey, &cfg.Signing.Key},
		{"nats-embedded", src.NATSEmbedded, &cfg.NATS.Embedded.Listen},
		{"drain-duration", src.DrainDuration, &cfg.Drain.Duration},
	}
	for _, f := range flags {
		if f.text == "" {
			continue
		}
		if err := setFlag(f.name, f.text, f.dst); err != nil {
			return err
		}
	}
	if cfg.Drain.Duration < 0 {
		return fmt.Errorf("--drain-duration %q: must not be negative", src.DrainDuration)
	}
	if src.SigIss != "" {
		cfg.Signing.Iss = src.SigIss
	}
	if src.NATSURL != "" {
		cfg.NATS.URL = src.NATSURL
	}
	return nil
}
