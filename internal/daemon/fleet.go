package daemon

import (
	"github.com/gripd/gripd/handoff"
	"github.com/gripd/gripd/internal/admin"
	"github.com/gripd/gripd/internal/config"
	"github.com/gripd/gripd/publish"
)

// fleet is how published items reach this instance's hub: the broker the
// control API publishes to, the NATS link the admin listener reports on
// (nil without NATS) and history (nil when off).
type fleet struct {
	broker  publish.Broker
	nats    admin.NATS
	history handoff.History
}

// joinFleet connects the instance to its fleet as cfg says: alone with
// the local broker, or through NATS (an external server, or the embedded
// one it starts), with history when enabled. What it starts is closed by
// Close, the NATS connection before the embedded server.
func (d *Daemon) joinFleet(cfg *config.Config) (fleet, error) {
	f := fleet{broker: &publish.LocalBroker{Hub: d.hub}}
	natsCfg := cfg.NATS.Client()
	if cfg.NATS.Embedded.Listen != "" {
		emb, err := d.startEmbedded(cfg)
		if err != nil {
			return f, err
		}
		if natsCfg.URL == "" {
			// In process: no port, no TLS to go through; a user made up at
			// start when the server asks for one.
			natsCfg.InProcess = emb.server
			natsCfg.User, natsCfg.Password, natsCfg.Token = emb.user, emb.password, ""
			natsCfg.Creds, natsCfg.NKey = "", ""
			natsCfg.TLSCA, natsCfg.TLSCert, natsCfg.TLSKey = "", "", "" // nats.tls is for a url's server
		}
	}
	if natsCfg.URL == "" && natsCfg.InProcess == nil {
		if cfg.History.Enabled {
			return f, historyNeedsNATS()
		}
		return f, nil
	}
	nb, err := publish.NewNATSBroker(natsCfg, d.hub, d.log)
	if err != nil {
		return f, err
	}
	d.closers = append([]func(){nb.Close}, d.closers...) // before the embedded server's shutdown
	f.broker, f.nats = nb, nb
	where := publish.RedactURL(natsCfg.URL)
	if natsCfg.URL == "" {
		where = "embedded (in process)"
	}
	d.log.Info().Str("nats", where).Bool("connected", nb.Connected()).Msg("publishes go through NATS")
	if cfg.History.Enabled {
		h, err := enableHistory(cfg.History, nb, d.log)
		if err != nil {
			return f, err
		}
		f.history = h
	}
	return f, nil
}

// startEmbedded starts the embedded NATS server (with JetStream when
// history is on).
func (d *Daemon) startEmbedded(cfg *config.Config) (*embeddedNATS, error) {
	emb := cfg.NATS.Embedded
	storeDir, cleanup, err := historyStore(emb, cfg.History)
	if err != nil {
		return nil, err
	}
	prefix := cfg.NATS.SubjectPrefix
	if prefix == "" {
		prefix = publish.DefaultSubjectPrefix
	}
	e, err := startEmbeddedNATS(emb, prefix, cfg.History.Enabled, storeDir, d.log, d.goroutines.Go)
	if err != nil {
		cleanup()
		return nil, err
	}
	d.closers = append(d.closers, e.server.Shutdown, cleanup)
	d.log.Info().Str("listen", string(emb.Listen)).Str("cluster", string(emb.Cluster.Listen)).
		Int("users", len(emb.Users)).Bool("tls", emb.TLS.Cert != "").Msg("embedded NATS server started")
	return e, nil
}
