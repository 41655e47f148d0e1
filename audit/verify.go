package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/time/rate"

	"github.com/firedrill/firedrill/audit/policy"
)

// ClaimReader reads what sidecar files beside a backup claim its checksums are (S3 objects or
// files named <key>.sha256, SHA256SUMS, ...). Read only when nothing stronger can be compared.
type ClaimReader interface {
	Claims(ctx context.Context, key string) map[string]string
}

// verifier compares copies with the primary's newest backup as copies.verify says: by the
// store's checksums (store), also by the writer's claims (claimed), or by reading both (read).
type verifier struct {
	mode    string
	primary *SourceState
	lim     *rate.Limiter
	// hashes and claims are per source and key, so the primary is read once per check.
	hashes map[string]string
	claims map[string]map[string]string
	// bytes is how much verify: read read.
	bytes int64
}

// readChunk is the most one read asks the limiter for at once.
const readChunk = 1 << 20

func newVerifier(_ context.Context, spec policy.CopiesAudit, primary *SourceState) *verifier {
	v := &verifier{mode: verifyMode(spec), primary: primary, hashes: map[string]string{}, claims: map[string]map[string]string{}}
	bps := spec.ReadBytesPerSecond
	if bps <= 0 {
		bps = policy.DefaultAuditReadBytesPerSecond
	}
	v.lim = rate.NewLimiter(rate.Limit(bps), int(min(bps, readChunk)))
	return v
}

// verify judges copy c at s of the primary's backup orig.
func (v *verifier) verify(ctx context.Context, orig Backup, s *SourceState, c Backup) (verdict, error) {
	vd := compare(orig, c, v.mode == policy.VerifyClaimed)
	if vd.differs {
		return vd, nil
	}
	if v.mode == policy.VerifyRead {
		return v.read(ctx, orig, s, c)
	}
	if vd.verified || !strings.HasPrefix(vd.compared, "claimed-") && vd.compared != ComparedSizeOnly && vd.compared != ComparedETagMultipart {
		return vd, nil
	}
	// Nothing the store computed: what do sidecar files claim? Read lazily, since it costs a
	// request per candidate file and most stores compute checksums.
	o2, c2 := orig, c
	o2.Claimed = v.sidecarClaims(ctx, v.primary, orig)
	c2.Claimed = v.sidecarClaims(ctx, s, c)
	return compare(o2, c2, v.mode == policy.VerifyClaimed), nil
}

func (v *verifier) sidecarClaims(ctx context.Context, s *SourceState, b Backup) map[string]string {
	out := map[string]string{}
	for k, x := range b.Claimed {
		out[k] = x
	}
	if s.Claims == nil {
		return out
	}
	id := s.Name + "\x00" + b.Key
	cl, ok := v.claims[id]
	if !ok {
		cl = s.Claims.Claims(ctx, b.Key)
		v.claims[id] = cl
	}
	for k, x := range cl {
		if out[k] == "" {
			out[k] = x
		}
	}
	return out
}

// read hashes the primary's backup and the copy (streaming, bandwidth-bounded) and compares.
func (v *verifier) read(ctx context.Context, orig Backup, s *SourceState, c Backup) (verdict, error) {
	for _, x := range []*SourceState{v.primary, s} {
		if x.Reader == nil {
			return verdict{compared: ComparedRead, detail: fmt.Sprintf("copies.verify: read, but %s cannot be read by this build", x.Name)}, nil
		}
	}
	want, err := v.hash(ctx, v.primary, orig.Key)
	if err != nil {
		return verdict{compared: ComparedRead}, fmt.Errorf("while reading the primary's %s: %w", orig.Key, err)
	}
	got, err := v.hash(ctx, s, c.Key)
	if err != nil {
		return verdict{compared: ComparedRead}, err
	}
	if got != want {
		return verdict{differs: true, compared: ComparedRead, detail: fmt.Sprintf("sha256 %s, primary %s (both read)", got, want)}, nil
	}
	return verdict{verified: true, compared: ComparedRead, detail: "sha256 " + got}, nil
}

// hash reads one backup through the limiter and returns its SHA-256 (hex).
func (v *verifier) hash(ctx context.Context, s *SourceState, key string) (string, error) {
	id := s.Name + "\x00" + key
	if h, ok := v.hashes[id]; ok {
		return h, nil
	}
	rc, err := s.Reader.Open(ctx, key)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, &limitedReader{ctx: ctx, r: rc, lim: v.lim}, make([]byte, readChunk))
	v.bytes += n
	if err != nil {
		return "", fmt.Errorf("while reading %s at %s: %w", key, s.Name, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	v.hashes[id] = sum
	return sum, nil
}

// limitedReader waits for the limiter after each read, so all reads of a check together stay
// under copies.readBytesPerSecond.
type limitedReader struct {
	ctx context.Context
	r   io.Reader
	lim *rate.Limiter
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if b := l.lim.Burst(); len(p) > b {
		p = p[:b]
	}
	n, err := l.r.Read(p)
	if n > 0 {
		if werr := l.lim.WaitN(l.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// Open reads one file of the directory (key relative to it).
func (s *DirSource) Open(_ context.Context, key string) (io.ReadCloser, error) {
	if strings.Contains(key, "..") {
		return nil, fmt.Errorf("while reading %s: %w", key, fs.ErrNotExist)
	}
	f, err := os.Open(filepath.Join(s.Dir, filepath.FromSlash(key)))
	if err != nil {
		return nil, fmt.Errorf("while reading %s: %w", key, err)
	}
	return f, nil
}

// Claims reads the checksums sidecar files beside key claim for it.
func (s *DirSource) Claims(ctx context.Context, key string) map[string]string {
	out := map[string]string{}
	readClaims(ctx, s, key, out)
	return out
}

// claimedOnly is a directory's Stat: a directory has no store that computes checksums, so
// whatever checksum it reports (a .sha256 file) was written by someone, and is a claim.
type claimedOnly struct{ Stater }

func (c claimedOnly) Stat(ctx context.Context, key string) (Backup, bool, error) {
	b, ok, err := c.Stater.Stat(ctx, key)
	for alg, h := range b.Checksums {
		if alg != "manifest-sha256" {
			b.claim(alg, h)
			delete(b.Checksums, alg)
		}
	}
	return b, ok, err
}
