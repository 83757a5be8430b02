package testutil

import (
	"context"
	"testing"
)

// Context returns a context that ends after WaitTimeout or when the test
// ends, whichever comes first: for calls that take one, so that a hang
// fails the test instead of stalling the run.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	t.Cleanup(cancel)
	return ctx
}
