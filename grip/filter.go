package grip

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The filters a subscription can name (Grip-Channel's filter=, the
// filters of a WebSocket subscribe control message). Unknown names are
// ignored, as Pushpin ignores them.
const (
	// FilterSkipSelf drops a message whose publish meta "sender" equals the
	// subscription meta "user": a chat user does not get their own lines.
	FilterSkipSelf = "skip-self"
	// FilterSkipUsers drops a message when the subscription meta "user" is
	// in the publish meta "skip_users", a comma-separated list.
	FilterSkipUsers = "skip-users"
	// FilterRequireSub drops a message unless the connection is also
	// subscribed to the channel named in the publish meta "require_sub".
	FilterRequireSub = "require-sub"
	// FilterBuildID replaces "%I" in content with the connection's current
	// id, rendered from the subscription meta "id_format" (e.g.
	// "%(news)s" for the prev-id of channel news; "id_encoding" "hex"
	// hex-encodes it), and "%(literal)I" with the literal. It applies to
	// published messages and to the bodies of stream holds and next links.
	FilterBuildID = "build-id"
	// FilterVarSubst replaces "%(name)s" in content with the subscription
	// meta "name"; a name that is not set drops the message.
	FilterVarSubst = "var-subst"
)

// FilterContext is what filters read about the connection and the
// message.
type FilterContext struct {
	// SubMeta is the subscription meta: Grip-Set-Meta, hold.meta of an
	// instruct body, or a WebSocket's meta.
	SubMeta map[string]string
	// PubMeta is the item's "meta".
	PubMeta map[string]string
	// Channels are every channel the connection is subscribed to.
	Channels []string
	// PrevIDs are the connection's current ids by channel, for the
	// channels that have one (build-id's id_format variables).
	PrevIDs map[string]string
}

// FilterMessage runs filters, in order, on the content of one published
// message. send is false when a filter dropped the message; the first
// drop ends the chain. A filter error (a var-subst variable that is not
// set, a malformed template) is returned with send false: the message is
// dropped for this connection, as Pushpin drops it.
func FilterMessage(filters []string, fc FilterContext, content []byte) (out []byte, send bool, err error) {
	out = content
	for _, f := range filters {
		switch f {
		case FilterSkipSelf:
			user, sender := fc.SubMeta["user"], fc.PubMeta["sender"]
			if user != "" && user == sender {
				return nil, false, nil
			}
		case FilterSkipUsers:
			if user := fc.SubMeta["user"]; user != "" && inCommaList(fc.PubMeta["skip_users"], user) {
				return nil, false, nil
			}
		case FilterRequireSub:
			if ch := fc.PubMeta["require_sub"]; ch != "" && !slices.Contains(fc.Channels, ch) {
				return nil, false, nil
			}
		case FilterBuildID:
			if out, err = buildID(fc, out); err != nil {
				return nil, false, fmt.Errorf("%s: %w", f, err)
			}
		case FilterVarSubst:
			if out, err = substituteVars(out, fc.SubMeta); err != nil {
				return nil, false, fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	return out, true, nil
}

// FilterResponse runs, over the body of a stream hold or of a next link,
// the filters of the connection's channels that apply to response bodies
// (build-id, once even when several channels name it).
func FilterResponse(channels []Channel, fc FilterContext, body []byte) ([]byte, error) {
	if !WantsResponseFilter(channels) {
		return body, nil
	}
	out, err := buildID(fc, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FilterBuildID, err)
	}
	return out, nil
}

// WantsResponseFilter reports whether any of channels names a filter that
// rewrites response bodies, so a caller can leave bodies untouched (and
// streamed) otherwise.
func WantsResponseFilter(channels []Channel) bool {
	for _, c := range channels {
		if slices.Contains(c.Filters, FilterBuildID) {
			return true
		}
	}
	return false
}

// inCommaList reports whether v is one of the comma-separated entries of
// list (spaces around entries ignored).
func inCommaList(list, v string) bool {
	for entry := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(entry) == v {
			return true
		}
	}
	return false
}

// buildID expands "%I" and "%(literal)I" in content.
func buildID(fc FilterContext, content []byte) ([]byte, error) {
	format, ok := fc.SubMeta["id_format"]
	if !ok {
		return nil, errors.New("no sub meta 'id_format'")
	}
	var id []byte
	haveID := false
	// With no prev-ids there is no id to build; "%I" is then an error, while
	// "%(literal)I" still works.
	if len(fc.PrevIDs) > 0 {
		rendered, err := substituteVars([]byte(format), fc.PrevIDs)
		if err != nil {
			return nil, fmt.Errorf("failed to render ID: %w", err)
		}
		id, haveID = rendered, true
	}
	useHex := false
	if enc, ok := fc.SubMeta["id_encoding"]; ok {
		if enc != "hex" {
			return nil, fmt.Errorf("unsupported encoding: %s", enc)
		}
		useHex = true
	}
	return expandDirectives(content, func(d byte, arg string, hasArg bool) ([]byte, error) {
		if d != 'I' {
			return nil, fmt.Errorf("unknown directive '%c'", d)
		}
		v := []byte(arg)
		if !hasArg {
			if !haveID {
				return nil, errors.New("no ID specified and no default ID in context")
			}
			v = id
		}
		if useHex {
			v = []byte(hex.EncodeToString(v))
		}
		return v, nil
	})
}
