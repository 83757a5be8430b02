package grip

import (
	"net/url"
	"testing"
	"time"
)

func TestParseLinksAndNextLink(t *testing.T) {
	links, err := ParseLinks([]string{`</a?x=1>; rel=next; timeout=30, <http://h/gone>; rel=gone`, `</b>; rel="next"`})
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 3 || links[0].Timeout != 30*time.Second || links[2].Timeout != DefaultLinkTimeout {
		t.Fatalf("links = %+v", links)
	}
	inst := &Instruction{Links: links}
	if next := inst.NextLink(); next == nil || next.URL != "/b" {
		t.Fatalf("NextLink = %+v, want the last rel=next (/b)", next)
	}
	if (&Instruction{Links: links[1:2]}).NextLink() != nil {
		t.Fatal("a gone link is not a next link")
	}
	for _, bad := range []string{`/a; rel=next`, `</a>; rel=prev`, `</a>; rel=next; timeout=0`, `</a>; rel=next; timeout=x`} {
		if _, err := ParseLinks([]string{bad}); err == nil {
			t.Errorf("ParseLinks(%q) accepted", bad)
		}
	}
}

func TestResolveLink(t *testing.T) {
	base, _ := url.Parse("http://example.com:7999/feed/live?channel=a")
	tests := []struct{ link, want string }{
		{"/next?after=5", "http://example.com:7999/next?after=5"},
		{"more", "http://example.com:7999/feed/more"},
		{"?after=6#frag", "http://example.com:7999/feed/live?after=6"},
		{"https://other.example/x", "https://other.example/x"},
	}
	for _, tt := range tests {
		u, err := ResolveLink(base, tt.link)
		if err != nil || u.String() != tt.want {
			t.Errorf("ResolveLink(%q) = %v, %v; want %s", tt.link, u, err, tt.want)
		}
	}
	for _, bad := range []string{"ftp://x/y", "http://[::1", "javascript:alert(1)"} {
		if u, err := ResolveLink(base, bad); err == nil {
			t.Errorf("ResolveLink(%q) = %v, want an error", bad, u)
		}
	}
}

func TestGripLast(t *testing.T) {
	v := GripLast("news", "42")
	if v != "news; last-id=42" {
		t.Fatalf("GripLast = %q", v)
	}
	ch, id, err := ParseGripLast(v)
	if err != nil || ch != "news" || id != "42" {
		t.Fatalf("ParseGripLast(%q) = %q, %q, %v", v, ch, id, err)
	}
	if _, _, err := ParseGripLast("news"); err == nil {
		t.Fatal("a Grip-Last without last-id parsed")
	}
}

func TestParseSetMeta(t *testing.T) {
	m, err := ParseSetMeta([]string{`user=alice, id_format="%(news)s"`, `empty=`})
	if err != nil || m["user"] != "alice" || m["id_format"] != "%(news)s" || m["empty"] != "" || len(m) != 3 {
		t.Fatalf("ParseSetMeta = %v, %v", m, err)
	}
	if _, err := ParseSetMeta([]string{"novalue"}); err == nil {
		t.Fatal("a Grip-Set-Meta without = parsed")
	}
}
