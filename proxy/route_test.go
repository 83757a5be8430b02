package proxy

import "testing"

func TestRouteRewritePath(t *testing.T) {
	tests := []struct {
		name  string
		route Route
		path  string
		want  string
	}{
		{"no rewrite", Route{}, "/a/b", "/a/b"},
		{"no rewrite keeps query-free raw path", Route{PathPrefix: "/api/"}, "/api/x%2Fy", "/api/x%2Fy"},
		{"empty path becomes /", Route{}, "", "/"},
		{"replace prefix", Route{PathPrefix: "/api/", ReplacePrefix: strPtr("/v2/")}, "/api/users", "/v2/users"},
		{"replace prefix with empty adds slash", Route{PathPrefix: "/api/", ReplacePrefix: strPtr("")}, "/api/users", "/users"},
		{"replace prefix, exact path", Route{PathPrefix: "/api", ReplacePrefix: strPtr("/")}, "/api", "/"},
		{"replace prefix without match leaves path", Route{PathPrefix: "/api/", ReplacePrefix: strPtr("/v2/")}, "/other", "/other"},
		{"replace with no path prefix prepends", Route{ReplacePrefix: strPtr("/base")}, "/x", "/base/x"},
		{"strip chars", Route{PathPrefix: "/api", StripChars: 4}, "/api/users", "/users"},
		{"strip chars leaving no slash adds one", Route{PathPrefix: "/api/", StripChars: 5}, "/api/users", "/users"},
		{"strip all chars", Route{PathPrefix: "/api", StripChars: 4}, "/api", "/"},
		{"strip more chars than the path", Route{StripChars: 10}, "/a", "/"},
		{"replace then strip", Route{PathPrefix: "/a/", ReplacePrefix: strPtr("/bb/"), StripChars: 3}, "/a/c", "/c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.route.RewritePath(tt.path); got != tt.want {
				t.Errorf("RewritePath(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}
