package integration

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/firedrill/firedrill/integration/harness"
	"github.com/firedrill/firedrill/reports/evidence"
)

// Writers racing on one S3 chain never fork it: the gateway honours If-None-Match: * and the
// loser of each race retries on the new end of the chain.
func TestEvidenceS3ConcurrentWritersNeverFork(t *testing.T) {
	gw := harness.StartS3(t)
	gw.CreateBucket(t, "evidence", harness.BucketOptions{Versioning: true})
	client := gw.Client(t)

	// The store depends on the conditional put being refused, not silently applied.
	for i, want := range []int{0, 412} {
		_, err := client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String("evidence"), Key: aws.String("probe"),
			Body: strings.NewReader(fmt.Sprint(i)), IfNoneMatch: aws.String("*")})
		var re *awshttp.ResponseError
		switch {
		case want == 0 && err != nil:
			t.Fatal(err)
		case want != 0 && (!errors.As(err, &re) || re.HTTPStatusCode() != want):
			t.Fatalf("versitygw %s: a second If-None-Match: * put returned %v, want HTTP %d", harness.VersitygwVersion, err, want)
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, 24)
	for w := range 4 {
		store := evidence.NewS3Store(gw.Client(t), "evidence", "fd/chains", nil) // a client each, as separate processes
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 6 {
				r := &evidence.Record{Kind: evidence.KindAudit, ID: fmt.Sprintf("w%d-%d", w, i), Target: "orders", Status: evidence.StatusPass,
					StartedAt: time.Now(), FinishedAt: time.Now()}
				if _, err := store.Append(t.Context(), r); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	store := evidence.NewS3Store(client, "evidence", "fd/chains", nil)
	rep, err := evidence.Verify(t.Context(), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Targets) != 1 || !rep.OK() || rep.Targets[0].Records != 24 {
		t.Fatalf("S3 chain after concurrent appends: %+v first %+v", rep.Targets, rep.Targets[0].First)
	}
	list, err := store.List(t.Context(), "orders")
	if err != nil || len(list) != 24 || list[23].Path != "fd/chains/orders/000000024.json" {
		t.Fatalf("list: %d records, %v", len(list), err)
	}
}
