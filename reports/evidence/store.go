package evidence

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Stored is a record as a store holds it.
type Stored struct {
	Record Record
	// Digest is the SHA-256 (hex) of the stored bytes: the next record's Prev.
	Digest string
	// Signed is true when the envelope carries a signature (Verify says whether it is good).
	Signed bool
	KeyID  string
	// Path is the file or object key.
	Path string
}

// Store keeps evidence records chained per target.
type Store interface {
	// Append sets r.Seq and r.Prev, stores r at the end of its target's chain and returns it.
	Append(ctx context.Context, r *Record) (*Stored, error)
	// List returns a target's records, oldest first.
	List(ctx context.Context, target string) ([]Stored, error)
	// Targets lists the targets with records.
	Targets(ctx context.Context) ([]string, error)
}

// Raw is a stored record's bytes, as Verify reads them.
type Raw struct {
	Path string
	// Seq is the sequence number in the record's name.
	Seq   int64
	Bytes []byte
}

// RawLister is what Verify needs of a store: every stored record of a target, oldest first, as
// it is, so that a record that no longer decodes is reported rather than an error.
type RawLister interface {
	ListRaw(ctx context.Context, target string) ([]Raw, error)
}

// seqWidth is the width of the zero-padded sequence number that starts a record's name.
const seqWidth = 9

func seqName(seq int64) string { return fmt.Sprintf("%0*d", seqWidth, seq) }

// parseSeq reads the sequence number a record's name starts with; ok is false for anything
// else in the target's directory (temporary files, the lock).
func parseSeq(name string) (int64, bool) {
	if len(name) < seqWidth+len(".json") || !strings.HasSuffix(name, ".json") {
		return 0, false
	}
	if rest := name[seqWidth:]; rest != ".json" && !strings.HasPrefix(rest, "-") {
		return 0, false
	}
	n, err := strconv.ParseInt(name[:seqWidth], 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// decodeAll turns raw records into Stored ones, failing on the first that does not decode.
func decodeAll(raws []Raw) ([]Stored, error) {
	out := make([]Stored, 0, len(raws))
	for _, r := range raws {
		o := open(r.Bytes)
		if o.problem != "" {
			return nil, fmt.Errorf("while reading evidence record %s: %s", r.Path, o.problem)
		}
		s := Stored{Record: o.record, Digest: sha256Hex(r.Bytes), Signed: len(o.env.Signatures) > 0, Path: r.Path}
		if s.Signed {
			s.KeyID = o.env.Signatures[0].KeyID
		}
		out = append(out, s)
	}
	return out, nil
}
