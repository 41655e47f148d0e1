package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// VersitygwVersion is the versitygw release the harness runs as its S3 endpoint. The same version
// is pinned in integration/tools/versitygw/go.mod, from which integration/setup/gotools.sh builds
// $FIREDRILL_CACHE_DIR/bin/versitygw-<version>.
const VersitygwVersion = "v1.8.0"

// DefaultS3Region is the region an S3 instance serves unless WithRegion says otherwise.
const DefaultS3Region = "us-east-1"

// S3 is a running versitygw gateway (posix backend, versioning on) private to one test.
type S3 struct {
	// Endpoint is the gateway's base URL, http://127.0.0.1:<port>. Clients must use path-style
	// addressing: there is no DNS for virtual-host buckets.
	Endpoint string
	// Region is the region the gateway reports for its buckets (HeadBucket, GetBucketLocation)
	// and the one its clients sign for. versitygw does not refuse a signature made for another
	// region, so two providers are told apart by their credentials: two instances, with
	// different regions and their own random keys, stand for two regions or two providers.
	Region string
	// AccessKey and SecretKey are the gateway's root credentials, random per instance.
	AccessKey string
	SecretKey string
	// Dir holds the gateway's data (root/ and versions/) and its log.
	Dir string
}

// S3Option changes how StartS3 starts a gateway.
type S3Option func(*s3Options)

type s3Options struct {
	region string
}

// WithRegion makes the gateway serve region instead of DefaultS3Region.
func WithRegion(region string) S3Option {
	return func(o *s3Options) { o.region = region }
}

// StartS3 starts a versitygw S3 gateway on a free port of 127.0.0.1 with its data in a temporary
// directory, and stops it when the test ends. It skips (or fails, see Missing) when the cached
// versitygw binary is absent.
func StartS3(t testing.TB, opts ...S3Option) *S3 {
	t.Helper()
	Integration(t)
	o := s3Options{region: DefaultS3Region}
	for _, opt := range opts {
		opt(&o)
	}

	bin := filepath.Join(CacheDir(), "bin", "versitygw-"+VersitygwVersion)
	if _, err := os.Stat(bin); err != nil {
		Missing(t, "versitygw "+VersitygwVersion, "no "+bin, "run `make setup`")
	}

	s := &S3{
		Region:    o.region,
		AccessKey: "AK" + randomHex(t, 9),
		SecretKey: randomHex(t, 20),
		Dir:       t.TempDir(),
	}
	for _, d := range []string{"root", "versions"} {
		if err := os.Mkdir(filepath.Join(s.Dir, d), 0o700); err != nil {
			t.Fatalf("while preparing the S3 data directory: %v", err)
		}
	}

	// FreePort's port can be taken again before the gateway binds it: retry on a new port.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		start := time.Now()
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
		stop, err := s.start(t, bin, addr)
		if err == nil {
			s.Endpoint = "http://" + addr
			t.Cleanup(stop)
			logComponent(t, "s3-versitygw", VersitygwVersion, fmt.Sprintf("region %s ready at %s in %s", s.Region, s.Endpoint, time.Since(start).Round(time.Millisecond)))
			return s
		}
		lastErr = err
	}
	t.Fatalf("while starting versitygw: %v\n%s", lastErr, logTail(filepath.Join(s.Dir, "versitygw.log")))
	return nil
}

// start runs the gateway on addr and waits until it answers HTTP. It returns the function that
// stops it.
func (s *S3) start(t testing.TB, bin, addr string) (stop func(), err error) {
	logPath := filepath.Join(s.Dir, "versitygw.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("while creating the gateway log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor

	cmd := exec.Command(bin,
		"--port", addr,
		"--region", s.Region,
		"posix",
		"--versioning-dir", filepath.Join(s.Dir, "versions"),
		filepath.Join(s.Dir, "root"),
	)
	// A minimal environment: VGW_* or AWS_* variables of the developer's shell must not change
	// the gateway under test.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + s.Dir,
		"ROOT_ACCESS_KEY=" + s.AccessKey,
		"ROOT_SECRET_KEY=" + s.SecretKey,
	}
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, and killed with the test binary even if the test never gets to run
	// its cleanups (a panic, a -timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("while running %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop = func() { stopProcessGroup(t, cmd, exited, "versitygw") }

	deadline := time.Now().Add(20 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("versitygw exited before serving on %s (%s)", addr, cmd.ProcessState)
		default:
		}
		resp, err := client.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return stop, nil // any HTTP answer (403 for an unsigned request) means it serves
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("versitygw did not answer on %s within 20 s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// AWSConfig returns an aws.Config for this gateway: its region, static root credentials and its
// endpoint, and nothing read from the environment or ~/.aws. Code that builds its own S3 client
// from it must also set s3.Options.UsePathStyle.
func (s *S3) AWSConfig() aws.Config {
	return aws.Config{
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		BaseEndpoint: aws.String(s.Endpoint),
		// The gateway is local: a failed request is a finding, not a blip to retry.
		RetryMaxAttempts: 1,
	}
}

// Client returns an S3 client for this gateway (path-style, root credentials).
func (s *S3) Client(t testing.TB) *s3.Client {
	t.Helper()
	return s3.NewFromConfig(s.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
}

// BucketOptions says how CreateBucket creates a bucket.
type BucketOptions struct {
	// Versioning turns versioning on. ObjectLock implies it, as on AWS.
	Versioning bool
	// ObjectLock creates the bucket with ObjectLockEnabledForBucket.
	ObjectLock bool
	// RetentionMode and RetentionDays set the bucket's default retention (needs ObjectLock):
	// types.ObjectLockRetentionModeGovernance or types.ObjectLockRetentionModeCompliance.
	RetentionMode types.ObjectLockRetentionMode
	RetentionDays int32
}

// CreateBucket creates bucket name as opts says, failing the test on any error.
func (s *S3) CreateBucket(t testing.TB, name string, opts BucketOptions) {
	t.Helper()
	if opts.RetentionMode != "" && !opts.ObjectLock {
		t.Fatalf("CreateBucket %s: a default retention needs ObjectLock", name)
	}
	if (opts.RetentionMode == "") != (opts.RetentionDays == 0) {
		t.Fatalf("CreateBucket %s: RetentionMode and RetentionDays go together", name)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := s.Client(t)

	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if s.Region != DefaultS3Region { // as AWS wants it outside us-east-1
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(s.Region)}
	}
	if opts.ObjectLock {
		in.ObjectLockEnabledForBucket = aws.Bool(true)
	}
	if _, err := c.CreateBucket(ctx, in); err != nil {
		t.Fatalf("while creating bucket %s: %v", name, err)
	}
	if opts.Versioning || opts.ObjectLock {
		if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(name),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
		}); err != nil {
			t.Fatalf("while enabling versioning on bucket %s: %v", name, err)
		}
	}
	if opts.RetentionMode != "" {
		if _, err := c.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{
			Bucket: aws.String(name),
			ObjectLockConfiguration: &types.ObjectLockConfiguration{
				ObjectLockEnabled: types.ObjectLockEnabledEnabled,
				Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{
					Mode: opts.RetentionMode,
					Days: aws.Int32(opts.RetentionDays),
				}},
			},
		}); err != nil {
			t.Fatalf("while setting the default retention of bucket %s: %v", name, err)
		}
	}
}

// SetModTime dates an object as if it had been written at t: the posix backend reports a file's
// modification time as the object's LastModified, so a test can have backups of any age, or
// from the future (a writer's skewed clock), without waiting.
func (s *S3) SetModTime(t testing.TB, bucket, key string, at time.Time) {
	t.Helper()
	p := filepath.Join(s.Dir, "root", bucket, filepath.FromSlash(key))
	if err := os.Chtimes(p, at, at); err != nil {
		t.Fatalf("while dating s3://%s/%s: %v", bucket, key, err)
	}
}

// stopProcessGroup stops a server the harness started in its own process group: SIGTERM, then
// SIGKILL if it has not exited after 10 s. It reports a server that had already died, since
// that usually explains a failing test.
func stopProcessGroup(t testing.TB, cmd *exec.Cmd, exited <-chan struct{}, what string) {
	select {
	case <-exited:
		if cmd.ProcessState != nil && !cmd.ProcessState.Success() {
			t.Logf("%s had already exited: %s", what, cmd.ProcessState)
		}
		return
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		t.Logf("%s did not stop on SIGTERM within 10 s: killed", what)
	}
}

// logTail returns the last few KiB of a server's log, for a failure message.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return "--- " + path + " (tail) ---\n" + string(b)
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("while making random credentials: %v", err)
	}
	return hex.EncodeToString(b)
}
