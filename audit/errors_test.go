package audit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5/pgconn"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestCause(t *testing.T) {
	vs := schema.GroupResource{Group: "snapshot.storage.k8s.io", Resource: "volumesnapshots"}
	tests := []struct {
		err  error
		want string
	}{
		{&smithy.GenericAPIError{Code: "InvalidAccessKeyId"}, CauseAuth},
		{&smithy.GenericAPIError{Code: "SignatureDoesNotMatch"}, CauseAuth},
		{&smithy.GenericAPIError{Code: "AccessDenied"}, CausePermissions},
		{&smithy.GenericAPIError{Code: "NoSuchBucket"}, CauseNotFound},
		{fmt.Errorf("while listing: %w", &smithy.GenericAPIError{Code: "AccessDenied"}), CausePermissions},
		{&pgconn.PgError{Code: "28P01"}, CauseAuth},
		{&pgconn.PgError{Code: "42501"}, CausePermissions},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, CauseNetwork},
		{&net.DNSError{Err: "no such host", Name: "s3.example"}, CauseNetwork},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), CauseTimeout},
		{fmt.Errorf("x: %w", context.Canceled), CauseInterrupted},
		{fmt.Errorf("open: %w", os.ErrPermission), CausePermissions},
		{fmt.Errorf("%w: environment variable X is not set", ErrCredentials), CauseAuth},
		{fmt.Errorf("while listing VolumeSnapshots: %w", apierrors.NewForbidden(vs, "", errors.New("RBAC"))), CausePermissions},
		{apierrors.NewUnauthorized("token expired"), CauseAuth},
		{apierrors.NewNotFound(vs, "x"), CauseNotFound},
		{apierrors.NewTimeoutError("slow etcd", 1), CauseTimeout},
		{apierrors.NewServiceUnavailable("apiserver shutting down"), CauseNetwork},
		{errors.New("something else"), CauseOther},
		// Issue 17 item 8: a wrong access key id is auth, whatever HTTP status carries it.
		{&smithy.GenericAPIError{Code: "XAdminUserNotFound"}, CauseAuth},
		{fmt.Errorf("while listing: %w", &smithy.GenericAPIError{Code: "InvalidAccessKeyId"}), CauseAuth},
		// A server down on a unix socket (ENOENT) is the same outage as a refused TCP connection.
		{&pgconn.ConnectError{Config: &pgconn.Config{}}, CauseNetwork},
		{fmt.Errorf("x: %w", &net.OpError{Op: "dial", Net: "unix", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ENOENT}}), CauseNetwork},
		{fmt.Errorf("x: %w", &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}), CauseNetwork},
		{fmt.Errorf("open: %w", os.ErrNotExist), CauseNotFound},
	}
	for _, tt := range tests {
		if got := Cause(tt.err); got != tt.want {
			t.Errorf("Cause(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestCauseField(t *testing.T) {
	for err, want := range map[error]string{
		&smithy.GenericAPIError{Code: "AccessDenied"}:       "permission",
		&smithy.GenericAPIError{Code: "XAdminUserNotFound"}: "auth",
		&smithy.GenericAPIError{Code: "NoSuchBucket"}:       "not-found",
		fmt.Errorf("x: %w", context.DeadlineExceeded):       "timeout",
	} {
		if got := CauseField(err); got != want {
			t.Errorf("CauseField(%v) = %s, want %s", err, got, want)
		}
	}
}
