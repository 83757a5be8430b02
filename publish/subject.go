package publish

import (
	"encoding/base64"
	"strings"
)

// Subject scheme (NATS). With the default prefix "gripd":
//
//	gripd.ch.<token>      one published item (Pushpin's item JSON) for a channel
//	gripd.publish         a whole publish body ({"items":[...]}), taken by one
//	                      instance of the fleet (queue group "gripd"), which
//	                      puts its items on their channel subjects
//	gripd.admin.channels  a request every instance answers with its channel
//	                      counts (see clusterchannels.go)
//	gripd.recover         a control API's POST /recover, for every instance
//	                      (see recover.go)
//
// A channel name is its own token when it is made only of ASCII letters,
// digits, '-' and '_' (so "news" is gripd.ch.news and stays readable in
// `nats sub`). Any other name ('.', '*', '>', spaces, non-ASCII, empty)
// becomes '~' followed by its base64url encoding without padding; '~'
// cannot start a plain token, so the mapping is reversible.

// ChannelSubject returns the NATS subject of a channel.
func ChannelSubject(prefix, channel string) string {
	return prefix + ".ch." + ChannelToken(channel)
}

// AllChannelsSubject returns the wildcard subject of every channel's
// items, for NATS permissions.
func AllChannelsSubject(prefix string) string { return prefix + ".ch.>" }

// PublishSubject returns the subject that takes whole publish bodies.
func PublishSubject(prefix string) string { return prefix + ".publish" }

// ChannelToken encodes a channel name as one NATS subject token.
func ChannelToken(channel string) string {
	if isPlainToken(channel) {
		return channel
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(channel))
}

// ChannelFromToken decodes a token made by ChannelToken.
func ChannelFromToken(token string) (string, bool) {
	if enc, ok := strings.CutPrefix(token, "~"); ok {
		b, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			return "", false
		}
		return string(b), true
	}
	return token, isPlainToken(token)
}

// ChannelFromSubject returns the channel of a channel subject.
func ChannelFromSubject(prefix, subject string) (string, bool) {
	token, ok := strings.CutPrefix(subject, prefix+".ch.")
	if !ok {
		return "", false
	}
	return ChannelFromToken(token)
}

func isPlainToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
