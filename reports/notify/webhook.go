package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// Header names of a webhook notification.
const (
	// SignatureHeader holds "sha256=" and the hex HMAC-SHA256 of the body, keyed with the
	// secret; absent when no secret is configured.
	SignatureHeader = "X-Firedrill-Signature"
	// TimestampHeader holds the Unix time (seconds) the notification was sent; the body's
	// timestamp field holds the same number, under the signature.
	TimestampHeader = "X-Firedrill-Timestamp"
)

// Kinds of outcome a notification reports.
const (
	KindDrill = "drill"
	KindAudit = "audit"
)

// Message is the JSON body of a webhook notification.
type Message struct {
	Kind   string         `json:"kind"`
	Target string         `json:"target"`
	Status reports.Status `json:"status"`
	// Summary is one line for a person.
	Summary string `json:"summary"`
	// Timestamp is when it was sent (Unix seconds), as in X-Firedrill-Timestamp: a receiver
	// that checks both can refuse old, replayed deliveries.
	Timestamp int64 `json:"timestamp"`
	// Result is the *reports.DrillResult (kind drill) or an AuditResult (kind audit).
	Result any `json:"result"`
}

// AuditResult is a webhook's result for kind audit.
type AuditResult struct {
	Findings []checks.Finding `json:"findings"`
}

// Webhook posts outcomes as JSON (Message) to a URL, signed with HMAC-SHA256 when Secret is set.
type Webhook struct {
	// URL is a secret: it never appears in an error.
	URL    string
	Secret []byte
	// OnlyFailures sends only outcomes that did not pass (a warning passes).
	OnlyFailures bool
	// Client sends the requests (nil: a new http.Client); each attempt is also bounded by
	// DefaultTimeout.
	Client *http.Client
	// Now stamps each notification (nil: time.Now).
	Now func() time.Time

	// backoff is the first wait before a retry (zero: a second); tests shorten it.
	backoff time.Duration
}

// RecordDrill sends a drill's outcome: the Webhook is a drill sink (restore/drill.Sink).
func (w *Webhook) RecordDrill(ctx context.Context, r *reports.DrillResult) error {
	if r == nil {
		return nil
	}
	status := drillStatus(r)
	if w.OnlyFailures && status == reports.StatusPass {
		return nil
	}
	return w.send(ctx, Message{Kind: KindDrill, Target: r.Target, Status: status, Summary: drillSummary(r), Result: r})
}

// RecordAudit sends an audit's findings for one target.
func (w *Webhook) RecordAudit(ctx context.Context, target string, findings []checks.Finding) error {
	status := auditStatus(findings)
	if w.OnlyFailures && status == reports.StatusPass {
		return nil
	}
	if findings == nil {
		findings = []checks.Finding{}
	}
	return w.send(ctx, Message{Kind: KindAudit, Target: target, Status: status, Summary: auditSummary(target, findings), Result: AuditResult{Findings: findings}})
}

func (w *Webhook) send(ctx context.Context, m Message) error {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	m.Timestamp = now().Unix()
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("while encoding the %s notification of %s: %w", m.Kind, m.Target, err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "firedrill")
	h.Set(TimestampHeader, strconv.FormatInt(m.Timestamp, 10))
	if len(w.Secret) > 0 {
		h.Set(SignatureHeader, Sign(w.Secret, body))
	}
	return newSender("webhook", w.URL, w.Client, w.backoff).post(ctx, body, h)
}

// Sign returns the X-Firedrill-Signature value of body: "sha256=" and the hex HMAC-SHA256 of
// body keyed with secret.
func Sign(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify reports whether signature (an X-Firedrill-Signature value) signs body with secret, in
// constant time: what a receiver written in Go calls.
func Verify(secret, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(signature))
}
