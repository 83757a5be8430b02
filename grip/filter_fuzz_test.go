package grip

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzFilterMessage feeds publisher-chosen content and backend-chosen
// meta through every filter: whatever they hold, filtering must not
// panic, and a message it keeps is never dropped silently with an error.
func FuzzFilterMessage(f *testing.F) {
	f.Add("hi %(user)s %I %(x)I 100%%", "alice", "%(news)s", "", "alice", "bob,carol", "news", "7")
	f.Fuzz(func(t *testing.T, content, user, idFormat, idEncoding, sender, skipUsers, requireSub, prevID string) {
		fc := FilterContext{
			SubMeta:  map[string]string{"user": user, "id_format": idFormat},
			PubMeta:  map[string]string{"sender": sender, "skip_users": skipUsers, "require_sub": requireSub},
			Channels: []string{"news"},
			PrevIDs:  map[string]string{"news": prevID},
		}
		if idEncoding != "" {
			fc.SubMeta["id_encoding"] = idEncoding
		}
		all := []string{FilterSkipSelf, FilterSkipUsers, FilterRequireSub, FilterVarSubst, FilterBuildID}
		out, send, err := FilterMessage(all, fc, []byte(content))
		if err != nil && send {
			t.Fatalf("error %v with send = true", err)
		}
		if !send && out != nil {
			t.Fatalf("dropped message with content %q", out)
		}
		body, err := FilterResponse([]Channel{{Name: "news", Filters: all}}, fc, []byte(content))
		if err == nil && !strings.Contains(content, "%") && string(body) != content {
			t.Fatalf("body without directives changed: %q -> %q", content, body)
		}
	})
}

// FuzzParseLinks feeds Grip-Link header values (a backend's) to the
// parser and the resolver.
func FuzzParseLinks(f *testing.F) {
	f.Add(`</next?after=5>; rel=next; timeout=30`)
	base, _ := url.Parse("http://example.com/feed")
	f.Fuzz(func(t *testing.T, v string) {
		links, err := ParseLinks([]string{v})
		if err != nil {
			return
		}
		for _, l := range links {
			if l.Rel != LinkNext && l.Rel != LinkGone {
				t.Fatalf("rel %q accepted", l.Rel)
			}
			if l.Timeout <= 0 {
				t.Fatalf("timeout %v accepted", l.Timeout)
			}
			if u, err := ResolveLink(base, l.URL); err == nil && u.Scheme != "http" && u.Scheme != "https" {
				t.Fatalf("resolved to scheme %q", u.Scheme)
			}
		}
	})
}

// FuzzParseSetMeta feeds Grip-Set-Meta header values to the parser.
func FuzzParseSetMeta(f *testing.F) {
	f.Add(`user=alice, id_format="%(news)s"`)
	f.Fuzz(func(t *testing.T, v string) {
		m, err := ParseSetMeta([]string{v})
		if err != nil {
			return
		}
		for k := range m {
			if k == "" {
				t.Fatalf("empty meta name from %q", v)
			}
		}
	})
}
