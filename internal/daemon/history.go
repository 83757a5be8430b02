package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/config"
	"github.com/gripd/gripd/publish"
)

// historySetupTimeout bounds the start-up work of history: reaching NATS
// (a JetStream cluster of embedded servers that start together elects
// its leader first) and creating or updating the stream.
const historySetupTimeout = 30 * time.Second

// historyStore returns where the embedded NATS server's JetStream keeps
// history when history is on: its store_dir or, when none is given, a new
// temporary directory. cleanup removes what it made; run it after the
// server has shut down.
func historyStore(emb config.EmbeddedNATS, h config.History) (dir string, cleanup func(), _ error) {
	if !h.Enabled || emb.StoreDir != "" {
		return emb.StoreDir, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "gripd-nats-")
	if err != nil {
		return "", nil, fmt.Errorf("embedded NATS store dir for history: %w", err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// enableHistory turns history on over nb.
func enableHistory(cfg config.History, nb *publish.NATSBroker, log zerolog.Logger) (handoff.History, error) {
	ctx, cancel := context.WithTimeout(context.Background(), historySetupTimeout)
	defer cancel()
	h, err := nb.EnableHistory(ctx, cfg.Publish())
	if err != nil {
		return nil, err
	}
	log.Info().Str("stream", h.Stream()).Dur("max_age", cfg.MaxAge.Std()).Int("max_items_per_channel", cfg.MaxItemsPerChannel).
		Dur("duplicate_window", cfg.DuplicateWindow.Std()).Msg("history on: items are kept in JetStream")
	return h, nil
}

// historyNeedsNATS is the start-up error of history without NATS.
func historyNeedsNATS() error {
	return errors.New("history.enabled needs NATS with JetStream: set nats.embedded.listen (gripd then runs JetStream itself), " +
		"or nats.url / --nats pointing at a nats-server run with -js")
}
