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
}
