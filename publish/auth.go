package publish

// Auth is the control API's optional authentication. With every field
// empty (the default) the control API is open, as Pushpin's is; keep it on
// a private listener then.
type Auth struct {
	// JWTKey, when set, requires "Authorization: Bearer <JWT>" signed HS256
	// with this key, the way @fanoutio/grip's Publisher sends it when given
	// control_iss and key. Default none.
	JWTKey []byte
	// JWTIss, when set with JWTKey, requires the token's iss claim to equal
	// it. Default "" (any issuer).
	JWTIss string
	// Username and Password, when set, require HTTP Basic credentials.
	// Default none. With both JWTKey and Basic set, either is accepted.
	Username string
	Password string
	// AllowBrowsers, with no credentials configured, lets requests from
	// web pages through. Default false: while the API is open, a request
	// that carries a browser's Origin header, or Sec-Fetch-Site other
	// than "none", is refused with 403, so a page a user visits cannot
	// publish through a control API it reaches (see
	// ControlAPI.fromBrowser). Publishers (GRIP libraries, curl, gripd
	// publish) send neither header.
	AllowBrowsers bool
	// RequireExp, with JWTKey, refuses tokens without an exp claim: a
	// token that never expires is good for ever once leaked. Default
	// false, as Pushpin accepts them.
	RequireExp bool
}
