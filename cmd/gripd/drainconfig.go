package main

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultDrainDuration is how long a lame-duck drain spreads the ends of
// held connections over: long enough that clients reconnecting elsewhere
// do not arrive in one burst, short enough for a rolling deploy.
const DefaultDrainDuration = 30 * time.Second

// DrainConfig is the YAML drain: section: how gripd leaves when told to
// stop (SIGTERM or SIGINT).
type DrainConfig struct {
	// Duration is the window over which held connections (streams,
	// long-polls, WebSockets) are ended, evenly spread; gripd exits when the
	// last has gone, or at once on a second signal. 0 ends them all at
	// once. Default DefaultDrainDuration (30s). Changes apply live.
	Duration time.Duration
}

// fileDrain mirrors the drain: section.
type fileDrain struct {
	Duration string `yaml:"duration"`
}

// apply sets the drain settings. node is the drain: mapping, or nil.
func (f *fileDrain) apply(drain *DrainConfig, node *yaml.Node) error {
	if f.Duration == "" {
		return nil
	}
	d, err := parseDrainDuration(f.Duration)
	if err != nil {
		return fmt.Errorf("line %d: drain.duration %w", lineOf(node, "duration"), err)
	}
	drain.Duration = d
	return nil
}

// parseDrainDuration reads a drain duration from the file or the flag.
func parseDrainDuration(value string) (time.Duration, error) {
	d, err := time.ParseDuration(value)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a duration such as 30s, or 0 to end everything at once", value)
	}
	return d, nil
}
