package checks

import (
	"fmt"
	"strconv"
	"time"
)

// Incremental is what an incremental drill leans on: the last snapshot of the target that
// passed a full drill, and the data files of this copy that are byte for byte what that
// drill verified.
//
// Why skipping the unchanged files is sound: a file counts as unchanged only when its
// SHA-256, computed while this copy was cloned and checked against the snapshot's manifest,
// equals the SHA-256 the baseline's copy had when its full drill passed. Damage at rest in the
// snapshot (a flipped bit in the repository) changes the file's hash, so the clone's manifest
// check fails the drill; damage that happened before this snapshot was taken changes the file
// against the baseline, so the file is re-checked. What an unchanged file holds was verified
// page by page (amcheck, checksums) by the baseline drill.
type Incremental struct {
	// BaselineSnapshot is the snapshot whose full drill passed, BaselineDrill that drill, and
	// BaselineAt when it ran.
	BaselineSnapshot string
	BaselineDrill    string
	BaselineAt       time.Time
	// Unchanged are the data files (data-directory paths, "base/5/16397.1") whose content
	// equals the baseline's.
	Unchanged map[string]bool
	// Files is how many data files the copy has, for the evidence.
	Files int
}

// SegmentFile is the name of segment seg of a relation fork whose first segment is file
// ("base/5/16397", 2: "base/5/16397.2").
func SegmentFile(file string, seg int64) string {
	if seg == 0 {
		return file
	}
	return file + "." + strconv.FormatInt(seg, 10)
}

// changed reports whether any segment holding blocks [start, end] of the relation whose first
// segment is file differs from the baseline. A relation without a file path (or one the
// copy's manifest does not name, such as a tablespace's) counts as changed.
func (inc *Incremental) changed(file string, start, end, segBlocks int64) bool {
	if inc == nil || file == "" {
		return true
	}
	if segBlocks <= 0 {
		segBlocks = SegmentBlocks
	}
	if end < start {
		end = start
	}
	for seg := start / segBlocks; seg <= end/segBlocks; seg++ {
		if !inc.Unchanged[SegmentFile(file, seg)] {
			return true
		}
	}
	return false
}

// anyChanged reports whether any segment of a relation of blocks blocks changed.
func (inc *Incremental) anyChanged(file string, blocks, segBlocks int64) bool {
	return inc.changed(file, 0, max(blocks-1, 0), segBlocks)
}

// describe says what the drill leans on, for findings.
func (inc *Incremental) describe() string {
	return fmt.Sprintf("snapshot %s, verified whole by drill %s at %s", inc.BaselineSnapshot, inc.BaselineDrill, inc.BaselineAt.UTC().Format(time.RFC3339))
}
