package checks

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
)

// BlockSize is PostgreSQL's page size (BLCKSZ) in the standard builds firedrill drills.
const BlockSize = 8192

// SegmentBlocks is the number of blocks in one 1 GB segment file of a relation (RELSEG_SIZE of
// standard builds): block n of segment s is block s*SegmentBlocks+n of the relation.
const SegmentBlocks = 131072

// checksumLanes is the number of FNV-1a sums PostgreSQL's page checksum computes side by side
// (N_SUMS); checksumPrime is FNV's prime.
const (
	checksumLanes = 32
	checksumPrime = 16777619
)

// checksumBase are the lanes' initial states (PostgreSQL's checksumBaseOffsets): part of the
// algorithm, as the page format defines it.
var checksumBase = [checksumLanes]uint32{
	0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A,
	0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
	0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA,
	0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
	0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE,
	0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
	0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E,
	0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
}

// pdChecksumOffset is where a page header keeps its checksum (after the 8-byte pd_lsn).
const pdChecksumOffset = 8

// PageChecksum is the data checksum PostgreSQL computes for page (BlockSize bytes, as stored
// on a little-endian machine) at block number blkno of its relation: the page with its
// checksum field taken as zero, hashed in 32 interleaved FNV-1a lanes, folded, mixed with the
// block number and reduced to 16 bits, never 0.
func PageChecksum(page []byte, blkno uint32) uint16 {
	sums := checksumBase
	mix := func(sum, v uint32) uint32 {
		t := sum ^ v
		return t*checksumPrime ^ (t >> 17)
	}
	for i := 0; i < BlockSize; i += 4 * checksumLanes {
		for j := 0; j < checksumLanes; j++ {
			off := i + 4*j
			v := binary.LittleEndian.Uint32(page[off:])
			if off == pdChecksumOffset {
				v &^= 0xFFFF // pd_checksum, the word's low half on a little-endian page
			}
			sums[j] = mix(sums[j], v)
		}
	}
	var result uint32
	for j := range sums {
		s := mix(mix(sums[j], 0), 0)
		result ^= s
	}
	result ^= blkno
	return uint16(result%65535 + 1)
}

// pageIsNew is a page never initialised (pd_upper 0): it has no checksum yet.
func pageIsNew(page []byte) bool {
	return binary.LittleEndian.Uint16(page[14:]) == 0
}

// BadBlock is a block whose stored checksum is not the one its content has, or that cannot be
// read whole.
type BadBlock struct {
	// File is the segment file relative to the data directory; Block the relation's block.
	File   string `json:"file"`
	Block  int64  `json:"block"`
	Stored uint16 `json:"stored,omitempty"`
	Want   uint16 `json:"computed,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// ChecksumScan is what VerifyChecksums read.
type ChecksumScan struct {
	// Files and Blocks were verified; SkippedFiles and SkippedBlocks were left to the caller
	// (skip said they were verified another way).
	Files, Blocks               int64
	SkippedFiles, SkippedBlocks int64
	// UnchangedFiles and UnchangedBlocks were left to the baseline drill that verified them
	// (VerifyChecksumsExcept).
	UnchangedFiles, UnchangedBlocks int64
	Bad                             []BadBlock
}

// relFileRe names a relation's segment file: relfilenode, fork, segment.
var relFileRe = regexp.MustCompile(`^(\d+)(_fsm|_vm|_init)?(?:\.(\d+))?$`)

// VerifyChecksums verifies the data checksum of every initialised block of every relation
// file in a stopped data directory (global, base and each tablespace), as pg_checksums --check
// does. verified says, of a relation's main fork named by the path pg_relation_filepath gives
// it ("base/5/16397"), how many of its first blocks were already read with their checksums
// verified (by the server, with data checksums on); nil: none. A segment file whose every
// block lies within them, and that ends on a block boundary, is counted, not read. Blocks
// that fail are listed; the error is for a directory or file that cannot be read at all.
func VerifyChecksums(ctx context.Context, dataDir string, verified func(rel string) int64) (*ChecksumScan, error) {
	return VerifyChecksumsExcept(ctx, dataDir, verified, nil)
}

// VerifyChecksumsExcept is VerifyChecksums that also counts, without reading them, the
// segment files unchanged says were verified another way ("base/5/16397.1": byte for byte
// the files a baseline drill verified); nil: none.
func VerifyChecksumsExcept(ctx context.Context, dataDir string, verified func(rel string) int64, unchanged func(file string) bool) (*ChecksumScan, error) {
	scan := &ChecksumScan{}
	roots := []struct{ rel, dir string }{{"global", filepath.Join(dataDir, "global")}, {"base", filepath.Join(dataDir, "base")}}
	spcs, err := os.ReadDir(filepath.Join(dataDir, "pg_tblspc"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("while listing the tablespaces of %s: %w", dataDir, err)
	}
	for _, s := range spcs {
		roots = append(roots, struct{ rel, dir string }{"pg_tblspc/" + s.Name(), filepath.Join(dataDir, "pg_tblspc", s.Name())})
	}
	buf := make([]byte, BlockSize)
	for _, root := range roots {
		dir, err := filepath.EvalSymlinks(root.dir) // a tablespace is a link to its location
		if err != nil {
			return nil, fmt.Errorf("while reading %s: %w", root.dir, err)
		}
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			m := relFileRe.FindStringSubmatch(d.Name())
			if m == nil {
				return nil // pg_filenode.map, PG_VERSION, pg_internal.init, temporary files
			}
			sub, _ := filepath.Rel(dir, p)
			rel := path.Join(root.rel, filepath.ToSlash(sub))
			seg, _ := strconv.ParseInt(m[3], 10, 64)
			if unchanged != nil && unchanged(rel) {
				fi, err := d.Info()
				if err != nil {
					return err
				}
				scan.UnchangedFiles++
				scan.UnchangedBlocks += fi.Size() / BlockSize
				return nil
			}
			if m[2] == "" && verified != nil {
				fi, err := d.Info()
				if err != nil {
					return err
				}
				n := fi.Size() / BlockSize
				if n > 0 && fi.Size()%BlockSize == 0 && seg*SegmentBlocks+n <= verified(path.Join(path.Dir(rel), m[1])) {
					scan.SkippedFiles++
					scan.SkippedBlocks += n
					return nil
				}
			}
			return verifyFile(p, rel, seg*SegmentBlocks, buf, scan)
		})
		if err != nil {
			return nil, fmt.Errorf("while verifying the checksums under %s: %w", root.dir, err)
		}
	}
	sort.Slice(scan.Bad, func(i, j int) bool {
		if scan.Bad[i].File != scan.Bad[j].File {
			return scan.Bad[i].File < scan.Bad[j].File
		}
		return scan.Bad[i].Block < scan.Bad[j].Block
	})
	return scan, nil
}

// verifyFile verifies one segment file whose first block is relation block first.
func verifyFile(p, rel string, first int64, buf []byte, scan *ChecksumScan) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	scan.Files++
	r := bufio.NewReaderSize(f, 1<<20)
	for blk := first; ; blk++ {
		n, err := io.ReadFull(r, buf)
		if err == io.EOF {
			return nil
		}
		if err == io.ErrUnexpectedEOF {
			scan.Bad = append(scan.Bad, BadBlock{File: rel, Block: blk, Reason: fmt.Sprintf("partial block: %d of %d bytes", n, BlockSize)})
			return nil
		}
		if err != nil {
			return fmt.Errorf("while reading block %d of %s: %w", blk, rel, err)
		}
		if pageIsNew(buf) {
			continue
		}
		scan.Blocks++
		stored := binary.LittleEndian.Uint16(buf[pdChecksumOffset:])
		if want := PageChecksum(buf, uint32(blk)); stored != want {
			scan.Bad = append(scan.Bad, BadBlock{File: rel, Block: blk, Stored: stored, Want: want})
		}
	}
}
