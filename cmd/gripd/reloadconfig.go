package main

import (
	"go.yaml.in/yaml/v3"
)

// ReloadConfig is the YAML reload: section: when gripd reads its config
// file again on its own. SIGHUP always reloads.
type ReloadConfig struct {
	// Watch makes gripd check the config file every second and reload it
	// when it has changed (and stayed unchanged for a second, so a file
	// still being written is not read half-way). Default true.
	Watch bool
}

// fileReload mirrors the reload: section. Watch is a pointer because
// false is a real setting, unlike a missing key.
type fileReload struct {
	Watch *bool `yaml:"watch"`
}

// apply sets the reload settings. node is the reload: mapping, or nil.
func (f *fileReload) apply(reload *ReloadConfig, _ *yaml.Node) error {
	if f.Watch != nil {
		reload.Watch = *f.Watch
	}
	return nil
}
