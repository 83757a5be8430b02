package grip

import (
	"fmt"
	"net/url"
	"strings"
)

// The relations of a Grip-Link.
const (
	LinkNext = "next" // fetched to continue a stream (and to recover it)
	LinkGone = "gone" // announced by Pushpin 1.41 when a session ends; gripd does not send it
)

// ParseLinks reads Grip-Link header lines: `<url>; rel=next; timeout=N`,
// comma-separated or repeated. A link without rel=next or rel=gone is an
// error; timeout defaults to DefaultLinkTimeout.
func ParseLinks(lines []string) ([]Link, error) {
	return parseLinks(lines)
}

// NextLink returns the instruction's rel=next link, or nil. With several,
// the last one wins, as in Pushpin.
func (inst *Instruction) NextLink() *Link {
	var next *Link
	for i := range inst.Links {
		if inst.Links[i].Rel == LinkNext {
			next = &inst.Links[i]
		}
	}
	return next
}

// ResolveLink resolves a link's URL against base (the URL the client
// asked for, or the link fetched last). Only http and https links are
// followed.
func ResolveLink(base *url.URL, link string) (*url.URL, error) {
	ref, err := url.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("link %q: %w", link, err)
	}
	u := base.ResolveReference(ref)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("link %q: scheme %q, want http or https", link, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("link %q has no host", link)
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// GripLast is the value of one Grip-Last request header: the id the
// connection last saw on channel, sent when gripd re-requests a long-poll
// or fetches a next link so the backend can answer with what came after.
func GripLast(channel, id string) string {
	return channel + "; last-id=" + id
}

// ParseGripLast reads a Grip-Last header value back into its channel and
// id (for backends and tests; gripd only writes them).
func ParseGripLast(v string) (channel, id string, err error) {
	hv, err := parseHeaderValue(v)
	if err != nil {
		return "", "", err
	}
	for _, p := range hv.Params {
		if p.Key == "last-id" {
			return hv.First, p.Value, nil
		}
	}
	return "", "", fmt.Errorf("Grip-Last %q has no last-id", strings.TrimSpace(v))
}
