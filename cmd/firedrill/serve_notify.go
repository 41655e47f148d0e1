package main

import (
	"context"
	"fmt"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports/notify"
	"github.com/firedrill/firedrill/restore/drill"
)

// notifySinks builds the configured notifications (URLs and secrets read now, so a rotated
// file is picked up); one that cannot be built is an error naming its entry, never its URL.
func notifySinks(cfg *policy.Config) ([]notify.Sink, error) {
	var out []notify.Sink
	for i, n := range cfg.Notifications {
		u, err := secret(n.URLEnv, n.URLFile)
		if err != nil {
			return out, fmt.Errorf("notifications[%d] (%s): while reading its URL: %w", i, n.Type, err)
		}
		switch n.Type {
		case policy.NotifySlack:
			out = append(out, &notify.Slack{URL: u, OnlyFailures: n.OnlyFailures})
		default:
			key, err := secret(n.SecretEnv, n.SecretFile)
			if err != nil {
				return out, fmt.Errorf("notifications[%d] (%s): while reading its secret: %w", i, n.Type, err)
			}
			out = append(out, &notify.Webhook{URL: u, Secret: []byte(key), OnlyFailures: n.OnlyFailures})
		}
	}
	return out, nil
}

// notifiers are the configured notifications as drill sinks.
func (d *daemon) notifiers(cfg *policy.Config) []drill.Sink {
	ns, err := notifySinks(cfg)
	if err != nil {
		d.log.Error("a notification is not sent", "error", err)
	}
	out := make([]drill.Sink, 0, len(ns))
	for _, n := range ns {
		out = append(out, n)
	}
	return out
}

// notifyAudit sends an audit's outcome to the configured notifications.
func (d *daemon) notifyAudit(ctx context.Context, cfg *policy.Config, target string, fs []checks.Finding) error {
	ns, err := notifySinks(cfg)
	if len(ns) > 0 {
		if serr := notify.Multi(ns...).RecordAudit(ctx, target, fs); serr != nil {
			return serr
		}
	}
	return err
}
