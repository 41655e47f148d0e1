package audit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
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
	}
	for _, tt := range tests {
		if got := Cause(tt.err); got != tt.want {
			t.Errorf("Cause(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}
