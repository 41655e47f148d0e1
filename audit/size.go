package audit

import (
	"fmt"
	"sort"
	"strings"

	"github.com/firedrill/firedrill/audit/policy"
	"github.com/firedrill/firedrill/checks"
	"github.com/firedrill/firedrill/reports"
)

// Reasons the backup-size check names.
const (
	ReasonZeroByte   = "zero-byte"
	ReasonBelowFloor = "below-floor"
	ReasonSizeDrop   = "size-drop"
	ReasonSizeGrowth = "size-growth"
	// ReasonSizeUnknown: the storage reports no size (CSI restoreSize unset), so the size
	// rules cannot judge the newest backup. A warning: nothing is known to be wrong.
	ReasonSizeUnknown = "size-unknown"
)

// CheckBackupSize compares each source's newest backup with the floor and with the median of
// the previous backups of that source: a drop of maxDrop or more fails (an upload that stopped
// half-way, a dump of an emptied database), a growth of maxGrowth or more warns.
func CheckBackupSize(sources []*SourceState, spec policy.SizeAudit) checks.Finding {
	var p problems
	var rows []map[string]any
	var okParts []string
	for _, s := range sources {
		row, ok := s.row(&p)
		rows = append(rows, row)
		if !ok {
			continue
		}
		if len(s.Summary.Newest) == 0 {
			row["status"] = "fail"
			p.fail(ReasonNoBackup, "%s: no backups at %s", s.Name, s.Where)
			continue
		}
		n := s.Summary.Newest[0]
		row["newest"], row["newestBytes"] = n.Key, n.Size
		if n.SizeUnknown {
			row["status"], row["sizeUnknown"] = "warn", true
			p.warn(ReasonSizeUnknown, "%s: the storage reports no size for newest backup %s (restoreSize unset), so its size cannot be checked", s.Name, n.Key)
			continue
		}
		// Previous backups below the floor are broken ones: they do not set the norm.
		var prev []int64
		for _, b := range s.Summary.Newest[1:] {
			if len(prev) == spec.History {
				break
			}
			if b.Size >= spec.MinBytes && !b.SizeUnknown {
				prev = append(prev, b.Size)
			}
		}
		row["previousBytes"] = prev
		switch {
		case n.Size == 0:
			row["status"] = "fail"
			p.fail(ReasonZeroByte, "%s: newest backup %s is zero bytes", s.Name, n.Key)
			continue
		case n.Size < spec.MinBytes:
			row["status"] = "fail"
			p.fail(ReasonBelowFloor, "%s: newest backup %s is %s, below the floor of %s", s.Name, n.Key, reports.HumanBytes(n.Size), reports.HumanBytes(spec.MinBytes))
			continue
		}
		if len(prev) == 0 {
			row["status"] = "pass"
			okParts = append(okParts, fmt.Sprintf("%s %s (no earlier backup to compare)", s.Name, reports.HumanBytes(n.Size)))
			continue
		}
		med := median(prev)
		row["medianBytes"] = med
		ratio := float64(n.Size) / float64(med)
		row["ratio"] = ratio
		switch {
		case 1-ratio >= spec.MaxDrop:
			row["status"] = "fail"
			p.fail(ReasonSizeDrop, "%s: newest backup %s is %s, %.0f%% below the median %s of the previous %d (max drop %.0f%%; sizes %s)",
				s.Name, n.Key, reports.HumanBytes(n.Size), (1-ratio)*100, reports.HumanBytes(med), len(prev), spec.MaxDrop*100, sizes(prev))
		case ratio-1 >= spec.MaxGrowth:
			row["status"] = "warn"
			p.warn(ReasonSizeGrowth, "%s: newest backup %s is %s, %.0f%% above the median %s of the previous %d (sizes %s)",
				s.Name, n.Key, reports.HumanBytes(n.Size), (ratio-1)*100, reports.HumanBytes(med), len(prev), sizes(prev))
		default:
			row["status"] = "pass"
			okParts = append(okParts, fmt.Sprintf("%s %s (median %s)", s.Name, reports.HumanBytes(n.Size), reports.HumanBytes(med)))
		}
	}
	ev := checks.Evidence{"minBytes": spec.MinBytes, "maxDrop": spec.MaxDrop, "maxGrowth": spec.MaxGrowth, "history": spec.History, "sources": rows}
	ok := "no backup sources configured"
	if len(okParts) > 0 {
		ok = "newest backups in line with their history: " + strings.Join(okParts, ", ")
	}
	return p.finding(policy.CheckBackupSize, ev, ok)
}

// median of sizes (the mean of the two middle ones for an even count).
func median(v []int64) int64 {
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func sizes(v []int64) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = reports.HumanBytes(n)
	}
	return strings.Join(parts, ", ")
}
