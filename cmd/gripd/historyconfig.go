package main

import (
	"fmt"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gripd/gripd/publish"
)

// HistoryConfig is the YAML history: section: the fleet keeps the latest
// items of each channel in NATS JetStream, so a client that reconnects to
// any instance with Last-Event-ID (or a hold whose channel prev-id is
// behind) first gets what it missed. It needs NATS with JetStream: an
// external server run with -js, or nats.embedded (which then runs
// JetStream, storing in nats.embedded.store_dir). Changes need a restart.
type HistoryConfig struct {
	// Enabled turns history on. Default false.
	Enabled bool
	// MaxAge is how long an item stays in history (YAML max_age). Default
	// 1h.
	MaxAge time.Duration
	// MaxItemsPerChannel is how many items of one channel history keeps,
	// the oldest going first (YAML max_items_per_channel). A client that
	// missed more is left to the backend's recovery. Default 1000.
	MaxItemsPerChannel int
	// DuplicateWindow is how long item ids are remembered: a publish
	// repeated within it (same channel and id, as a publisher retrying
	// after a timeout sends it) is stored and delivered once (YAML
	// duplicate_window). At most MaxAge. Default 2m.
	DuplicateWindow time.Duration
}

// defaultHistory is the history: section's defaults.
func defaultHistory() HistoryConfig {
	return HistoryConfig{MaxAge: time.Hour, MaxItemsPerChannel: 1000, DuplicateWindow: 2 * time.Minute}
}

// publishConfig is the stream's shape for package publish.
func (h HistoryConfig) publishConfig() publish.HistoryConfig {
	return publish.HistoryConfig{MaxAge: h.MaxAge, MaxItemsPerChannel: h.MaxItemsPerChannel, DuplicateWindow: h.DuplicateWindow}
}

// fileHistory mirrors the history: section.
type fileHistory struct {
	Enabled            bool   `yaml:"enabled"`
	MaxAge             string `yaml:"max_age"`
	MaxItemsPerChannel *int   `yaml:"max_items_per_channel"`
	DuplicateWindow    string `yaml:"duplicate_window"`
}

// apply sets the history settings. node is the history: mapping, or nil.
func (f *fileHistory) apply(h *HistoryConfig, node *yaml.Node) error {
	h.Enabled = f.Enabled
	if f.MaxAge != "" {
		d, err := time.ParseDuration(f.MaxAge)
		if err != nil || d <= 0 {
			return fmt.Errorf("line %d: history.max_age %q: want a duration such as 1h or 30m", lineOf(node, "max_age"), f.MaxAge)
		}
		h.MaxAge = d
	}
	if f.MaxItemsPerChannel != nil {
		if *f.MaxItemsPerChannel < 1 {
			return fmt.Errorf("line %d: history.max_items_per_channel %d: must be at least 1",
				lineOf(node, "max_items_per_channel"), *f.MaxItemsPerChannel)
		}
		h.MaxItemsPerChannel = *f.MaxItemsPerChannel
	}
	if f.DuplicateWindow != "" {
		d, err := time.ParseDuration(f.DuplicateWindow)
		if err != nil || d <= 0 {
			return fmt.Errorf("line %d: history.duplicate_window %q: want a duration such as 2m", lineOf(node, "duplicate_window"), f.DuplicateWindow)
		}
		h.DuplicateWindow = d
	}
	if h.DuplicateWindow > h.MaxAge {
		if f.DuplicateWindow != "" {
			return fmt.Errorf("line %d: history.duplicate_window %v: must not be longer than max_age (%v)",
				lineOf(node, "duplicate_window"), h.DuplicateWindow, h.MaxAge)
		}
		h.DuplicateWindow = h.MaxAge // a short max_age shortens the default window
	}
	return nil
}
