package harness_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/firedrill/firedrill/integration/harness"
)

func TestS3RoundTrip(t *testing.T) {
	harness.Integration(t)
	gw := harness.StartS3(t)
	c := gw.Client(t)
	ctx := t.Context()

	gw.CreateBucket(t, "backups", harness.BucketOptions{Versioning: true})
	body := []byte("base backup, pretend")
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("backups"), Key: aws.String("pg/base.tar"), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if aws.ToString(put.VersionId) == "" {
		t.Errorf("PutObject in a versioned bucket returned no version id")
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("backups"), Key: aws.String("pg/base.tar")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	defer got.Body.Close()
	b, err := io.ReadAll(got.Body)
	if err != nil {
		t.Fatalf("reading the object: %v", err)
	}
	if !bytes.Equal(b, body) {
		t.Errorf("GetObject = %q, want %q", b, body)
	}
}

func TestS3ObjectLockRefusesDeletingALockedVersion(t *testing.T) {
	harness.Integration(t)
	gw := harness.StartS3(t)
	c := gw.Client(t)
	ctx := t.Context()

	for _, mode := range []types.ObjectLockRetentionMode{types.ObjectLockRetentionModeGovernance, types.ObjectLockRetentionModeCompliance} {
		t.Run(string(mode), func(t *testing.T) {
			bucket := "locked-" + strings.ToLower(string(mode))
			gw.CreateBucket(t, bucket, harness.BucketOptions{ObjectLock: true, RetentionMode: mode, RetentionDays: 1})

			cfg, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(bucket)})
			if err != nil {
				t.Fatalf("GetObjectLockConfiguration: %v", err)
			}
			if r := cfg.ObjectLockConfiguration.Rule; r == nil || r.DefaultRetention == nil ||
				r.DefaultRetention.Mode != mode || aws.ToInt32(r.DefaultRetention.Days) != 1 {
				t.Fatalf("default retention = %+v, want %s for 1 day", r, mode)
			}

			// versitygw applies the bucket's default retention when a delete comes, rather than
			// stamping it on each version at upload as AWS does: GetObjectRetention of such a
			// version answers NoSuchObjectLockConfiguration here. A version given its own
			// retention reads back as on AWS.
			retainUntil := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
			objects := map[string]*s3.PutObjectInput{
				"bucket default": {Bucket: aws.String(bucket), Key: aws.String("wal/1"), Body: strings.NewReader("wal 1")},
				"own retention": {Bucket: aws.String(bucket), Key: aws.String("wal/2"), Body: strings.NewReader("wal 2"),
					ObjectLockMode: types.ObjectLockMode(mode), ObjectLockRetainUntilDate: &retainUntil},
			}
			for what, in := range objects {
				put, err := c.PutObject(ctx, in)
				if err != nil {
					t.Fatalf("PutObject (%s): %v", what, err)
				}
				version := aws.ToString(put.VersionId)
				if version == "" {
					t.Fatalf("PutObject (%s) in an Object Lock bucket returned no version id", what)
				}
				if in.ObjectLockMode != "" {
					ret, err := c.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: in.Bucket, Key: in.Key, VersionId: put.VersionId})
					if err != nil {
						t.Fatalf("GetObjectRetention (%s): %v", what, err)
					}
					if ret.Retention == nil || ret.Retention.Mode != mode || !aws.ToTime(ret.Retention.RetainUntilDate).Equal(retainUntil) {
						t.Errorf("retention (%s) = %+v, want %s until %s", what, ret.Retention, mode, retainUntil)
					}
				}

				_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: in.Bucket, Key: in.Key, VersionId: put.VersionId})
				var apiErr smithy.APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("DeleteObject of a locked version (%s): err = %v, want an S3 error (refused)", what, err)
				}
				t.Logf("deleting a locked version (%s) was refused: %s: %s", what, apiErr.ErrorCode(), apiErr.ErrorMessage())
				if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: in.Bucket, Key: in.Key, VersionId: put.VersionId}); err != nil {
					t.Errorf("HeadObject of the locked version (%s) after the refused delete: %v", what, err)
				}
			}
		})
	}
}

// Two gateways at once stand for two regions or providers: separate data, separate credentials.
func TestS3TwoInstances(t *testing.T) {
	harness.Integration(t)
	primary := harness.StartS3(t)
	replica := harness.StartS3(t, harness.WithRegion("eu-central-1"))
	if primary.Endpoint == replica.Endpoint {
		t.Fatalf("both gateways at %s", primary.Endpoint)
	}
	if primary.Region != harness.DefaultS3Region || replica.Region != "eu-central-1" {
		t.Fatalf("regions = %s, %s", primary.Region, replica.Region)
	}
	ctx := t.Context()

	for _, gw := range []*harness.S3{primary, replica} {
		gw.CreateBucket(t, "backups", harness.BucketOptions{})
		if _, err := gw.Client(t).PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("backups"), Key: aws.String("region"), Body: strings.NewReader(gw.Region)}); err != nil {
			t.Fatalf("PutObject on %s: %v", gw.Region, err)
		}
	}
	for _, gw := range []*harness.S3{primary, replica} {
		head, err := gw.Client(t).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("backups")})
		if err != nil {
			t.Fatalf("HeadBucket on %s: %v", gw.Region, err)
		}
		if r := aws.ToString(head.BucketRegion); r != gw.Region {
			t.Errorf("gateway %s reports its bucket in region %q", gw.Region, r)
		}
		got, err := gw.Client(t).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("backups"), Key: aws.String("region")})
		if err != nil {
			t.Fatalf("GetObject on %s: %v", gw.Region, err)
		}
		b, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if string(b) != gw.Region {
			t.Errorf("gateway %s holds %q: the instances share data", gw.Region, b)
		}
	}

	// The primary's credentials mean nothing to the replica.
	cross := *primary
	cross.Endpoint = replica.Endpoint
	if _, err := cross.Client(t).ListBuckets(ctx, &s3.ListBucketsInput{}); err == nil {
		t.Errorf("the replica accepted the primary's credentials")
	}
}

func TestVersitygwPinMatchesToolsModule(t *testing.T) {
	checkToolPin(t, "versitygw", "github.com/versity/versitygw", harness.VersitygwVersion)
}
