package integration

import (
	"bytes"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/firedrill/firedrill/audit"
	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/integration/harness"
)

// BenchmarkAuditListing100k audits one target whose dumps are 100,000 objects under a prefix
// spread over three real S3 servers (versitygw): backup age, size and 3-2-1 copies, listing
// every object page by page. It reports the time per audit and the peak live heap during it,
// which stays bounded because summaries keep only the newest few backups per source.
// The objects are created once per benchmark run (the sub-benchmark repeats only the audit).
func BenchmarkAuditListing100k(b *testing.B) {
	if testing.Short() {
		b.Skip("integration benchmark: skipped under -short")
	}
	const total = 100_000
	l := &threeLocations{a: harness.StartS3(b), b: harness.StartS3(b, harness.WithRegion("eu-west-1")), c: harness.StartS3(b)}
	l.a.CreateBucket(b, "primary", harness.BucketOptions{})
	l.b.CreateBucket(b, "offsite", harness.BucketOptions{})
	l.c.CreateBucket(b, "locked", harness.BucketOptions{})
	for name, s := range map[string]*harness.S3{"A": l.a, "B": l.b, "C": l.c} {
		b.Setenv("FD_TEST_"+name+"_AK", s.AccessKey)
		b.Setenv("FD_TEST_"+name+"_SK", s.SecretKey)
	}

	start := time.Now()
	type job struct {
		s      *harness.S3
		bucket string
		key    string
	}
	jobs := make(chan job, 256)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	clients := map[*harness.S3]*s3.Client{l.a: l.a.Client(b), l.b: l.b.Client(b), l.c: l.c.Client(b)}
	for range 48 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := []byte("0123456789abcdef")
			for j := range jobs {
				_, err := clients[j.s].PutObject(b.Context(), &s3.PutObjectInput{Bucket: aws.String(j.bucket), Key: aws.String(j.key), Body: bytes.NewReader(body)})
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("while uploading %s: %w", j.key, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	locs := []job{{s: l.a, bucket: "primary"}, {s: l.b, bucket: "offsite"}, {s: l.c, bucket: "locked"}}
	for i := range total {
		j := locs[i%3]
		j.key = fmt.Sprintf("bench/orders-%06d.dump", i/3)
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	b.Logf("created %d objects across 3 locations in %s", total, time.Since(start).Round(time.Millisecond))

	cfg, err := policy.Parse(b.TempDir()+"/firedrill.yaml", []byte(l.config("bench/", "locked", "        minImmutable: 0\n")))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("audit", func(b *testing.B) {
		var peak uint64
		for b.Loop() {
			runtime.GC()
			stop := samplePeakHeap(&peak)
			a := &audit.Auditor{Now: time.Now}
			rep := a.Audit(b.Context(), cfg, cfg.Targets)
			stop()
			for _, f := range rep.Targets[0].Findings {
				if f.Status == checks.Error {
					b.Fatalf("%s: %s", f.Check, f.Message)
				}
			}
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(total, "objects/op")
	})
}

// samplePeakHeap records the largest live heap seen until stop is called.
func samplePeakHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > *peak {
				*peak = v
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}
