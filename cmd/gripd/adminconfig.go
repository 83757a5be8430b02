package main

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// DefaultAdminListen is where the admin listener (health checks, metrics,
// channels) listens unless told otherwise: loopback, next to the control
// API's 5561, because /metrics and /channels tell more than a stranger
// needs to know.
const DefaultAdminListen = "127.0.0.1:5563"

// AdminConfig is the YAML admin: section: the listener for operators and
// their tools (GET /healthz, /readyz, /metrics, /channels), apart from
// clients and the control API.
type AdminConfig struct {
	// Listen is the admin listener's address. Default DefaultAdminListen;
	// "" (YAML listen: off or listen: "", flag --admin-listen off) turns
	// the listener off.
	Listen string
}

// fileAdmin mirrors the admin: section. Listen is a pointer because an
// empty value is a real setting (off), unlike a missing key.
type fileAdmin struct {
	Listen *string `yaml:"listen"`
}

// apply sets the admin listener's settings. node is the admin: mapping,
// or nil when the file has none.
func (f *fileAdmin) apply(admin *AdminConfig, node *yaml.Node) error {
	if f.Listen == nil {
		return nil
	}
	listen, err := adminListen(*f.Listen)
	if err != nil {
		return fmt.Errorf("line %d: admin.listen: %w", lineOf(node, "listen"), err)
	}
	admin.Listen = listen
	return nil
}

// adminListen checks an admin listen setting from the file or the flag:
// host:port, or "off" (or "") for no admin listener, returned as "".
func adminListen(value string) (string, error) {
	if value == "" || value == "off" {
		return "", nil
	}
	if err := checkListenAddress(value); err != nil {
		return "", fmt.Errorf("%w, or off", err)
	}
	return value, nil
}
