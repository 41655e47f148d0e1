package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// Slack posts outcomes to a Slack incoming webhook: a one-line summary and the checks that did
// not pass.
type Slack struct {
	// URL is the incoming webhook's URL, itself the credential: it never appears in an error.
	URL string
	// OnlyFailures sends only outcomes that did not pass (a warning passes).
	OnlyFailures bool
	// Client sends the requests (nil: a new http.Client); each attempt is also bounded by
	// DefaultTimeout.
	Client *http.Client

	// backoff is the first wait before a retry (zero: a second); tests shorten it.
	backoff time.Duration
}

// RecordDrill sends a drill's outcome: Slack is a drill sink (restore/drill.Sink).
func (s *Slack) RecordDrill(ctx context.Context, r *reports.DrillResult) error {
	if r == nil {
		return nil
	}
	status := drillStatus(r)
	if s.OnlyFailures && status == reports.StatusPass {
		return nil
	}
	return s.send(ctx, slackText(status, drillSummary(r), failingLines(r.Checks)))
}

// RecordAudit sends an audit's findings for one target.
func (s *Slack) RecordAudit(ctx context.Context, target string, findings []checks.Finding) error {
	status := auditStatus(findings)
	if s.OnlyFailures && status == reports.StatusPass {
		return nil
	}
	return s.send(ctx, slackText(status, auditSummary(target, findings), failingLines(findings)))
}

func (s *Slack) send(ctx context.Context, text string) error {
	body, err := json.Marshal(struct {
		Text string `json:"text"`
	}{text})
	if err != nil {
		return fmt.Errorf("while encoding the slack notification: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "firedrill")
	return newSender("slack", s.URL, s.Client, s.backoff).post(ctx, body, h)
}

// slackText is the message: an emoji for the status, the summary in bold, then one bullet per
// check that did not pass.
func slackText(status reports.Status, summary string, failing []string) string {
	icon := ":white_check_mark:"
	switch status {
	case reports.StatusFail:
		icon = ":x:"
	case reports.StatusError:
		icon = ":warning:"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s *firedrill: %s*", icon, slackEscape(summary))
	for _, l := range failing {
		b.WriteString("\n• " + slackEscape(l))
	}
	return b.String()
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning to (&, <, >), so a
// finding's message cannot turn into a link or a mention.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
