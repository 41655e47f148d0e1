package audit

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"

	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5/pgconn"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Why a source could not be read, so a person knows where to look.
const (
	CauseAuth        = "auth"
	CausePermissions = "permissions"
	CauseNetwork     = "network"
	CauseNotFound    = "not-found"
	CauseTimeout     = "timeout"
	CauseConfig      = "configuration"
	CauseInterrupted = "interrupted"
	CauseOther       = "other"
)

// ErrCredentials means the configured credentials could not be loaded (an unset variable, an
// unreadable file). Its message names the variable or file, never a value.
var ErrCredentials = errors.New("credentials not available")

// SourceError is a source that could not be read: which, where, and why.
type SourceError struct {
	Source string
	// Where is a printable description of the place (bucket and endpoint, directory); never
	// credentials.
	Where string
	Op    string
	Err   error
}

func (e *SourceError) Error() string {
	return "while " + e.Op + " " + e.Source + " (" + e.Where + "): " + Cause(e.Err) + ": " + e.Err.Error()
}

func (e *SourceError) Unwrap() error { return e.Err }

// Cause classifies an error reading a source: auth, permissions, network, not-found, timeout,
// configuration, interrupted or other.
func Cause(err error) string {
	if err == nil {
		return ""
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
			"AuthorizationHeaderMalformed", "InvalidClientTokenId", "UnrecognizedClientException",
			"InvalidSecurity", "MissingSecurityHeader", "IncompleteSignature",
			// versitygw answers an unknown access key id with this (HTTP 404): a wrong key, not a
			// missing bucket.
			"XAdminUserNotFound":
			return CauseAuth
		case "AccessDenied", "Forbidden", "AllAccessDisabled", "AccountProblem":
			return CausePermissions
		case "NoSuchBucket", "NotFound", "NoSuchKey":
			return CauseNotFound
		case "RequestTimeout", "RequestTimeTooSkewed":
			return CauseTimeout
		}
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case strings.HasPrefix(pg.Code, "28"):
			return CauseAuth
		case pg.Code == "42501":
			return CausePermissions
		case pg.Code == "3D000":
			return CauseNotFound
		case strings.HasPrefix(pg.Code, "08"), strings.HasPrefix(pg.Code, "57P"):
			return CauseNetwork
		}
	}
	// The Kubernetes API (CSI VolumeSnapshots): its status carries the reason.
	var ks apierrors.APIStatus
	if errors.As(err, &ks) {
		switch {
		case apierrors.IsUnauthorized(err):
			return CauseAuth
		case apierrors.IsForbidden(err):
			return CausePermissions
		case apierrors.IsNotFound(err):
			return CauseNotFound
		case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), apierrors.IsTooManyRequests(err):
			return CauseTimeout
		case apierrors.IsServiceUnavailable(err):
			return CauseNetwork
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return CauseInterrupted // Ctrl-C or SIGTERM: nothing is wrong with the source
	case errors.Is(err, ErrCredentials):
		return CauseAuth
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return CauseTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return CauseTimeout
	}
	// Before the file errors: a server down on a unix socket fails to dial with ENOENT (the
	// socket file is gone), which is the same outage as a refused TCP connection.
	var op *net.OpError
	var dns *net.DNSError
	var cerr *pgconn.ConnectError
	if errors.As(err, &op) || errors.As(err, &dns) || errors.As(err, &cerr) {
		// pgconn reports refused connections and failed auth alike as ConnectError; the server's
		// error (handled above) tells them apart when there was one.
		return CauseNetwork
	}
	switch {
	case errors.Is(err, os.ErrPermission):
		return CausePermissions
	case errors.Is(err, os.ErrNotExist):
		return CauseNotFound
	}
	var hs interface{ HTTPStatusCode() int }
	if errors.As(err, &hs) {
		switch hs.HTTPStatusCode() {
		case 401:
			return CauseAuth
		case 403:
			return CausePermissions
		case 404:
			return CauseNotFound
		}
	}
	return CauseOther
}

func asSourceError(err error, target **SourceError) bool { return errors.As(err, target) }

// CauseField is the cause as the JSON "cause" field spells it: auth, network, not-found,
// permission, timeout (and configuration, interrupted, other). Messages keep Cause's words.
func CauseField(err error) string {
	c := Cause(err)
	if c == CausePermissions {
		return "permission"
	}
	return c
}
