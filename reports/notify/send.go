package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// DefaultTimeout bounds each attempt to deliver a notification.
	DefaultTimeout = 10 * time.Second
	// Retries is how many times a delivery is retried after a 5xx answer, a 429 or a network
	// error (never after another 4xx: the request itself is wrong and would fail again).
	Retries = 2
	// defaultBackoff is the wait before the first retry; it doubles for each next one.
	defaultBackoff = time.Second
	// maxRetryAfter caps how long a 429's Retry-After may hold a drill's sink.
	maxRetryAfter = 30 * time.Second
)

// Error is a notification that could not be delivered. Its message never holds the URL.
type Error struct {
	// Type is the notifier: webhook or slack.
	Type string
	// StatusCode is the last HTTP status received; 0 when no answer came (network, timeout).
	StatusCode int
	// Attempts is how many requests were made.
	Attempts int
	msg      string
	cause    error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("webhook notification (type %s) failed: %s", e.Type, e.msg)
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	return s
}

// Unwrap returns the network error beneath (context.DeadlineExceeded, a *net.OpError, ...),
// with the *url.Error that would print the URL taken off.
func (e *Error) Unwrap() error { return e.cause }

// sender posts JSON to a secret URL with a timeout and retries.
type sender struct {
	kind    string
	url     string
	client  *http.Client
	backoff time.Duration
}

func newSender(kind, rawURL string, client *http.Client, backoff time.Duration) sender {
	if client == nil {
		// The per-attempt context bounds each request; no client-wide timeout is needed.
		client = &http.Client{}
	}
	if backoff <= 0 {
		backoff = defaultBackoff
	}
	return sender{kind: kind, url: rawURL, client: client, backoff: backoff}
}

// post sends body, setting header on every attempt, until it is accepted (2xx), refused (4xx
// other than 429), or Retries retries have failed.
func (s sender) post(ctx context.Context, body []byte, header http.Header) error {
	if s.url == "" {
		return &Error{Type: s.kind, msg: "no URL configured"}
	}
	wait := s.backoff
	var last *Error
	for attempt := 1; ; attempt++ {
		retry, after, err := s.once(ctx, body, header)
		if err == nil {
			return nil
		}
		last = err
		last.Attempts = attempt
		if !retry || attempt > Retries {
			return last
		}
		d := max(wait, min(after, maxRetryAfter))
		wait *= 2
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			last.msg += "; gave up waiting to retry: " + ctx.Err().Error()
			return last
		case <-t.C:
		}
	}
}

// once makes one attempt. retry says whether another may succeed; after is the server's
// Retry-After, if any.
func (s sender) once(parent context.Context, body []byte, header http.Header) (retry bool, after time.Duration, err *Error) {
	ctx, cancel := context.WithTimeout(parent, DefaultTimeout)
	defer cancel()
	req, rerr := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if rerr != nil {
		// The parse error quotes the URL: keep only what is wrong with it.
		return false, 0, &Error{Type: s.kind, msg: "invalid URL: " + s.redact(stripURL(rerr).Error())}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, derr := s.client.Do(req)
	if derr != nil {
		cause := stripURL(derr)
		msg := s.redact(cause.Error())
		if parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			msg = fmt.Sprintf("no answer within %s", DefaultTimeout)
		}
		// A network failure or this attempt's timeout may pass; the caller giving up does not.
		return parent.Err() == nil, 0, &Error{Type: s.kind, msg: msg, cause: cause}
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, 0, nil
	}
	msg := "HTTP " + strconv.Itoa(resp.StatusCode)
	if t := strings.TrimSpace(string(excerpt)); t != "" {
		// Slack answers with a reason (invalid_payload, no_service, ...) worth showing.
		msg += ": " + s.redact(oneLine(t, 200))
	}
	e := &Error{Type: s.kind, StatusCode: resp.StatusCode, msg: msg}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return true, retryAfter(resp.Header.Get("Retry-After")), e
	case resp.StatusCode >= 500:
		return true, 0, e
	}
	return false, 0, e
}

// stripURL takes off the *url.Error that net/http wraps around every request error: its
// Error() quotes the URL, token and all.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// redact removes the URL, and the parts of it that carry a token (path, query, password), from
// text that a server or a library may have echoed them into.
func (s sender) redact(text string) string {
	secrets := []string{s.url}
	if u, err := url.Parse(s.url); err == nil {
		if len(u.EscapedPath()) > 1 {
			secrets = append(secrets, u.EscapedPath(), u.Path)
		}
		if u.RawQuery != "" {
			secrets = append(secrets, u.RawQuery)
		}
		if p, ok := u.User.Password(); ok && p != "" {
			secrets = append(secrets, p)
		}
	}
	for _, sec := range secrets {
		if len(sec) > 1 {
			text = strings.ReplaceAll(text, sec, "[redacted]")
		}
	}
	return text
}

// retryAfter reads a Retry-After header given in seconds (Slack's form); 0 otherwise.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// oneLine folds whitespace and cuts text to at most n runes.
func oneLine(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if r := []rune(text); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return text
}
