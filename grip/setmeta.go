package grip

// ParseSetMeta reads Grip-Set-Meta header lines (`name=value`, repeatable
// and comma-separated; a value may be quoted) into the subscription meta
// that the filters read, e.g. `user` for skip-self or `id_format` for
// build-id.
func ParseSetMeta(lines []string) (map[string]string, error) {
	return parseSetMeta(lines)
}
