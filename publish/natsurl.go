package publish

import (
	"net/url"
	"strings"
)

// RedactURL returns a NATS URL (or a comma-separated list of them) fit for
// logs and errors: a password, or a token given as the user name, is
// replaced, so credentials in nats.url never reach a log line.
func RedactURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, hasPass := u.User.Password(); hasPass {
			parts[i] = u.Redacted()
		} else {
			// nats://TOKEN@host: the user name is the secret.
			u.User = url.User("xxxxx")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
