// Package notify sends drill and audit outcomes to people: a generic webhook (a JSON body signed
// with HMAC-SHA256) and Slack incoming webhooks. Each notifier is a result sink (restore/drill.Sink
// and an audit's RecordAudit); Multi combines them. A notification URL is a secret (a Slack
// webhook URL is its own credential), so no error of this package contains it.
package notify
