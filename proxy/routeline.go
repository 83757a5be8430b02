package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// ErrBlankLine is what ParseRouteLine returns for a line that holds only
// spaces and/or a comment. A routes-file reader checks for it with
// errors.Is and skips the line; every other error is a real mistake.
var ErrBlankLine = errors.New("blank route line")

// ParseRouteLine parses one line of a Pushpin routes file, so that routes
// written for Pushpin work in gripd unchanged:
//
//	<condition>[,prop[=val]...] <target>[,prop...] [<target>...]
//
// Sections are separated by spaces (gripd also accepts tabs), props by
// commas. A value may be written in double quotes to hold spaces, commas
// or '#'; inside quotes only \\ and \" are escapes. '#' outside quotes
// starts a comment.
//
// The condition is "*" (any host) or an exact host without port. Condition
// props: path_beg=/prefix, replace_beg=X, path_rem=N, id=NAME, sig_iss=ISS,
// sig_key=KEY (ParseKey syntax), no_grip, aco (auto cross-origin: CORS
// headers on every response), and header=Name:Value (repeatable; an empty
// value removes the header). A target is host:port or
// [ipv6]:port; target props: ssl (https), insecure, host=H[:port] (the Host
// header sent upstream), over_http.
//
// Any other prop is an error that names it: gripd does not silently ignore
// configuration it does not implement. Several targets mean failover in
// order, as in Pushpin. Without id=, the ID is DefaultRouteID(host,
// path_beg). A blank or comment-only line returns ErrBlankLine.
func ParseRouteLine(line string) (Route, error) {
	// Tolerate the line ending a file reader may leave on the line, but not
	// a line break in the middle: that is two lines glued together.
	line = strings.TrimRight(line, "\r\n")
	if strings.ContainsAny(line, "\r\n") {
		return Route{}, errors.New("route line contains a line break")
	}

	sections, err := splitRouteLine(line)
	if err != nil {
		return Route{}, err
	}
	if len(sections) == 0 {
		return Route{}, ErrBlankLine
	}
	if len(sections) < 2 {
		return Route{}, errors.New("route line needs a condition and at least one target")
	}

	route, err := parseCondition(sections[0])
	if err != nil {
		return Route{}, fmt.Errorf("condition: %w", err)
	}
	for _, section := range sections[1:] {
		backend, err := parseTarget(section)
		if err != nil {
			return Route{}, err
		}
		route.Backends = append(route.Backends, backend)
	}
	route.Balance = BalanceFailover
	if route.ID == "" {
		route.ID = DefaultRouteID(route.Host, route.PathPrefix)
	}
	return route, nil
}

// DefaultRouteID is the ID of a route that was not given one: the host
// ("*" for any host), then a comma and the path prefix when there is
// one: "*" for the catch-all route, "example.com", "*,/api/",
// "example.com,/api/". It is a shorter form of Pushpin's
// "domain,proto,ssl,path_beg" (gripd has no proto or ssl conditions),
// readable in logs, and unique because the route table rejects two routes
// with the same host and prefix (a host has no comma).
func DefaultRouteID(host, pathPrefix string) string {
	if host == "" {
		host = "*"
	}
	if pathPrefix == "" {
		return host
	}
	return host + "," + pathPrefix
}

// routeSection is one space-separated part of a route line: the condition
// or a target, with its comma-separated props.
type routeSection struct {
	// value is the host (condition) or host:port (target); "" when the
	// section starts directly with a prop.
	value string
	props []routeProp
}

// routeProp is one prop of a section.
type routeProp struct {
	name  string
	value string
	// hasValue tells "name=" (a prop with an empty value) from "name" (a
	// flag), so that a flag given a value can be reported.
	hasValue bool
}

// splitRouteLine cuts a line into sections and props, following Pushpin's
// tokenizer: quotes may appear anywhere in a part and are removed, and a
// first part that contains '=' is a prop, leaving the section's value empty.
func splitRouteLine(line string) ([]routeSection, error) {
	var sections []routeSection
	i := 0
	for {
		for i < len(line) && isRouteSpace(line[i]) {
			i++
		}
		if i >= len(line) || line[i] == '#' {
			return sections, nil
		}

		var section routeSection
		first := true
		for {
			part, next, err := readRoutePart(line, i)
			if err != nil {
				return nil, err
			}
			i = next
			if first && !strings.Contains(part, "=") {
				section.value = part
			} else {
				prop, err := splitRouteProp(part)
				if err != nil {
					return nil, err
				}
				section.props = append(section.props, prop)
			}
			first = false

			if i < len(line) && line[i] == ',' {
				i++
				continue
			}
			break // a space, a comment or the end of the line
		}
		sections = append(sections, section)
	}
}

// readRoutePart reads from line[start:] up to the next unquoted space,
// comma or '#', removing quotes and their escapes. It returns the part
// and the index of the delimiter (or len(line)).
func readRoutePart(line string, start int) (string, int, error) {
	var part strings.Builder
	i := start
	for i < len(line) {
		c := line[i]
		if isRouteSpace(c) || c == ',' || c == '#' {
			break
		}
		if c != '"' {
			part.WriteByte(c)
			i++
			continue
		}
		// A quoted stretch: copy until the closing quote.
		i++
		for {
			if i >= len(line) {
				return "", 0, errors.New("unterminated quoted value")
			}
			c = line[i]
			if c == '"' {
				i++
				break
			}
			if c == '\\' {
				if i+1 >= len(line) || (line[i+1] != '\\' && line[i+1] != '"') {
					return "", 0, errors.New(`bad escape in quoted value (only \\ and \" are allowed)`)
				}
				c = line[i+1]
				i++
			}
			part.WriteByte(c)
			i++
		}
	}
	return part.String(), i, nil
}

// splitRouteProp splits "name=value" (or a bare "name") at the first '='.
func splitRouteProp(part string) (routeProp, error) {
	if part == "" {
		return routeProp{}, errors.New(`empty route property (stray ",")`)
	}
	name, value, hasValue := strings.Cut(part, "=")
	if name == "" {
		return routeProp{}, fmt.Errorf("route property %q has no name", part)
	}
	return routeProp{name: name, value: value, hasValue: hasValue}, nil
}

// isRouteSpace reports whether c separates sections.
func isRouteSpace(c byte) bool {
	return c == ' ' || c == '\t'
}

// parseCondition builds a Route (without backends) from the first section.
func parseCondition(section routeSection) (Route, error) {
	var route Route
	switch {
	case section.value == "":
		return Route{}, errors.New(`missing host (use "*" for any host)`)
	case section.value == "*":
		route.Host = "*"
	default:
		host, err := parseConditionHost(section.value)
		if err != nil {
			return Route{}, err
		}
		route.Host = host
	}

	seen := make(map[string]bool)
	for _, prop := range section.props {
		if seen[prop.name] && prop.name != "header" {
			return Route{}, fmt.Errorf("route property %q given twice", prop.name)
		}
		seen[prop.name] = true
		if err := applyConditionProp(&route, prop); err != nil {
			return Route{}, err
		}
	}
	if seen["path_rem"] && seen["replace_beg"] {
		return Route{}, errors.New("path_rem and replace_beg cannot be combined")
	}
	return route, nil
}

// applyConditionProp sets the field of route that prop describes.
func applyConditionProp(route *Route, prop routeProp) error {
	switch prop.name {
	case "path_beg":
		if prop.value == "" {
			return errors.New("path_beg needs a value")
		}
		if !strings.HasPrefix(prop.value, "/") {
			return fmt.Errorf(`path_beg %q must start with "/"`, prop.value)
		}
		route.PathPrefix = prop.value
	case "replace_beg":
		// An empty value is allowed: it removes the path_beg prefix.
		replacement := prop.value
		route.ReplacePrefix = &replacement
	case "path_rem":
		n, err := strconv.Atoi(prop.value)
		if err != nil || n < 0 {
			return fmt.Errorf("path_rem %q: want a whole number of characters, 0 or more", prop.value)
		}
		route.StripChars = n
	case "id":
		if prop.value == "" {
			return errors.New("id needs a value")
		}
		route.ID = prop.value
	case "sig_iss":
		if prop.value == "" {
			return errors.New("sig_iss needs a value")
		}
		route.SigIss = prop.value
	case "sig_key":
		if prop.value == "" {
			return errors.New("sig_key needs a value")
		}
		key, err := ParseKey(prop.value)
		if err != nil {
			return fmt.Errorf("sig_key: %w", err)
		}
		route.SigKey = key
	case "no_grip":
		if prop.hasValue {
			return flagWithValueError(prop)
		}
		route.NoGrip = true
	case "aco":
		if prop.hasValue {
			return flagWithValueError(prop)
		}
		route.AutoCrossOrigin = true
	case "header":
		name, value, err := parseHeaderProp(prop.value)
		if err != nil {
			return err
		}
		if route.SetHeaders == nil {
			route.SetHeaders = make(http.Header)
		}
		route.SetHeaders.Set(name, value)
	default:
		return unknownPropError(prop.name)
	}
	return nil
}

// parseHeaderProp splits a header=Name:Value prop. As in Pushpin, spaces
// after the colon are dropped; an empty value means "remove the header".
func parseHeaderProp(spec string) (string, string, error) {
	name, value, ok := strings.Cut(spec, ":")
	if !ok || name == "" {
		return "", "", fmt.Errorf("header %q: want Name:Value", spec)
	}
	if !validHeaderName(name) {
		return "", "", fmt.Errorf("header %q: bad header name", spec)
	}
	value = strings.TrimLeft(value, " \t")
	if !validHeaderValue(value) {
		return "", "", fmt.Errorf("header %q: value holds control characters", spec)
	}
	return name, value, nil
}

// parseTarget builds a Backend from a target section.
func parseTarget(section routeSection) (Backend, error) {
	if section.value == "" {
		return Backend{}, errors.New("target: missing host:port")
	}
	host, port, err := parseHostPort(section.value)
	if err != nil {
		return Backend{}, fmt.Errorf("target %q: %w", section.value, err)
	}

	backend := Backend{}
	scheme := "http"
	seen := make(map[string]bool)
	for _, prop := range section.props {
		if seen[prop.name] {
			return Backend{}, fmt.Errorf("target %q: route property %q given twice", section.value, prop.name)
		}
		seen[prop.name] = true
		switch prop.name {
		case "ssl", "insecure", "over_http":
			if prop.hasValue {
				return Backend{}, fmt.Errorf("target %q: %w", section.value, flagWithValueError(prop))
			}
			switch prop.name {
			case "ssl":
				scheme = "https"
			case "insecure":
				backend.Insecure = true
			case "over_http":
				backend.OverHTTP = true
			}
		case "host":
			if err := validHostHeader(prop.value); err != nil {
				return Backend{}, fmt.Errorf("target %q: host=%q: %w", section.value, prop.value, err)
			}
			backend.HostHeader = prop.value
		default:
			return Backend{}, fmt.Errorf("target %q: %w", section.value, unknownPropError(prop.name))
		}
	}
	backend.URL = &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	return backend, nil
}

// parseHostPort splits "host:port" or "[ipv6]:port" and checks both parts.
func parseHostPort(hostport string) (string, int, error) {
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, errors.New("want host:port or [ipv6]:port")
	}
	if err := validHostname(host); err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q (want 1-65535)", portText)
	}
	return host, port, nil
}

// parseConditionHost checks a route's host (the condition of a route
// line). A port is an error: the table compares hosts without their port,
// so "example.com:8080" would silently match every port. A bracketed IPv6
// address is accepted and returned without brackets.
func parseConditionHost(value string) (string, error) {
	host := value
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if err := validHostname(host); err != nil {
		return "", fmt.Errorf("host %q: %w (want a host without port, or \"*\")", value, err)
	}
	return host, nil
}

// validHostHeader checks a target's host= value: a host, optionally with
// a port.
func validHostHeader(value string) error {
	if value == "" {
		return errors.New("needs a value")
	}
	err := validHostname(value)
	if err == nil || !strings.Contains(value, ":") {
		return err // a host name or a bare IP address, or why it is not one
	}
	_, _, err = parseHostPort(value)
	return err
}

// validHostname accepts a DNS name (letters, digits, '-', '.', '_') or an
// IP address. It rejects anything that would change meaning inside a URL.
func validHostname(host string) error {
	if host == "" {
		return errors.New("empty host")
	}
	if strings.Contains(host, ":") {
		if net.ParseIP(host) == nil {
			return errors.New("bad host (an IPv6 address is written [addr]:port)")
		}
		return nil
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_'
		if !ok {
			return fmt.Errorf("bad character %q in host", c)
		}
	}
	return nil
}

// unknownPropError names a prop gripd does not implement. Pushpin props
// that gripd leaves out on purpose get a hint, so a migrating user knows
// the line is not simply misspelt.
func unknownPropError(name string) error {
	if isPushpinOnlyProp(name) {
		return fmt.Errorf("unknown route property %q (a Pushpin feature gripd does not support)", name)
	}
	return fmt.Errorf("unknown route property %q", name)
}

// isPushpinOnlyProp lists the route props Pushpin has and gripd does not.
func isPushpinOnlyProp(name string) bool {
	switch name {
	case "proto", "ssl", "prefix", "orig_headers", "as_host", "debug",
		"jsonp_mode", "jsonp_cb", "jsonp_body", "jsonp_defcb", "jsonp_defmethod",
		"session", "sockjs", "sockjs_as_path", "log_level",
		"untrusted", "trust_connect_host", "sub", "one_event", "ipc_file_mode",
		"client_cert", "client_key":
		return true
	}
	return false
}

// flagWithValueError reports a flag written as name=value. Accepting it
// would make "insecure=false" mean insecure.
func flagWithValueError(prop routeProp) error {
	return fmt.Errorf("route property %q is a flag and takes no value (got %q)", prop.name, prop.value)
}

// RedactRouteLine returns line with the value of every sig_key= replaced
// by REDACTED, for error messages and logs: a route line that fails to
// parse must not print its key.
func RedactRouteLine(line string) string {
	const prop = "sig_key="
	var out strings.Builder
	for {
		i := strings.Index(line, prop)
		if i < 0 {
			out.WriteString(line)
			return out.String()
		}
		start := i + len(prop)
		out.WriteString(line[:start])
		out.WriteString("REDACTED")
		_, end, err := readRoutePart(line, start)
		if err != nil {
			return out.String() // an unterminated quote: the rest is the key
		}
		line = line[end:]
	}
}
