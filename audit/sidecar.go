package audit

import (
	"bufio"
	"context"
	"encoding/hex"
	"io"
	"path"
	"strings"
)

// DumpSuffixes are what a backup file's name ends with when a source sets no match: dumps,
// archives and database backup formats, each optionally compressed (CompressionSuffixes).
// Anything else under the prefix (a README, a manifest, a log) is not a backup.
var DumpSuffixes = []string{
	".dump", ".dmp", ".pgdump", ".pg_dump", ".sql", ".backup", ".bak",
	".tar", ".tgz", ".archive", ".rdb", ".xbstream",
}

// CompressionSuffixes may follow a dump suffix (orders.sql.gz) or a WAL segment's name.
var CompressionSuffixes = []string{".gz", ".zst", ".lz4", ".bz2", ".xz", ".zip", ".7z"}

// sidecarSuffixes and sidecarNames are checksum and signature files: evidence about the backup
// they name, never a backup themselves.
var (
	sidecarSuffixes = []string{".sha256", ".sha512", ".sha1", ".md5", ".sha256sum", ".sha512sum", ".sha1sum", ".md5sum",
		".asc", ".sig", ".minisig", ".p7s"}
	sidecarNames = []string{"sha256sums", "sha512sums", "sha1sums", "md5sums", "checksums", "checksums.txt"}
)

// IsSidecar reports whether a file's base name is a checksum or signature file
// (orders.dump.sha256, SHA256SUMS, orders.dump.asc).
func IsSidecar(name string) bool {
	base := strings.ToLower(path.Base(name))
	for _, s := range sidecarSuffixes {
		if strings.HasSuffix(base, s) {
			return true
		}
	}
	for _, n := range sidecarNames {
		if base == n || strings.HasPrefix(base, n+".") {
			return true
		}
	}
	return false
}

// IsDumpName reports whether a base name ends with a dump suffix, optionally compressed.
func IsDumpName(name string) bool {
	base := strings.ToLower(path.Base(name))
	for _, c := range CompressionSuffixes {
		if strings.HasSuffix(base, c) {
			base = strings.TrimSuffix(base, c)
			break
		}
	}
	for _, s := range DumpSuffixes {
		if strings.HasSuffix(base, s) && len(base) > len(s) {
			return true
		}
	}
	return false
}

// matches says whether an object or file is a backup of a source: never a sidecar; then the
// source's glob on the base name, or the dump suffixes when it has none.
func matches(glob, rel string) bool {
	if IsSidecar(rel) {
		return false
	}
	if glob == "" {
		return IsDumpName(rel)
	}
	ok, _ := path.Match(glob, path.Base(rel))
	return ok
}

// sidecarAlgorithms are the sidecar suffixes whose content is a hex digest, by algorithm.
var sidecarAlgorithms = []struct{ alg, suffix, sums string }{
	{"sha256", ".sha256", "SHA256SUMS"},
	{"sha512", ".sha512", "SHA512SUMS"},
	{"sha1", ".sha1", "SHA1SUMS"},
	{"md5", ".md5", "MD5SUMS"},
}

// sidecarLimit bounds how much of a sidecar is read: a checksum file lists digests, not data.
const sidecarLimit = 1 << 20

// opener reads one file or object by its key relative to a source.
type opener interface {
	Open(ctx context.Context, key string) (io.ReadCloser, error)
}

// readClaims reads the checksums sidecar files claim for key: <key>.<alg> ("<hex>  name" or a
// bare digest) or a <ALG>SUMS file beside it (sha256sum's format). Missing or unreadable
// sidecars claim nothing: they are evidence, and their absence is not an error.
func readClaims(ctx context.Context, o opener, key string, into map[string]string) {
	dir, base := path.Split(key)
	for _, a := range sidecarAlgorithms {
		if into[a.alg] != "" {
			continue
		}
		if h := readDigest(ctx, o, key+a.suffix, base, a.alg); h != "" {
			into[a.alg] = h
			continue
		}
		if h := readDigest(ctx, o, dir+a.sums, base, a.alg); h != "" {
			into[a.alg] = h
		}
	}
}

// readDigest finds the digest of name in a checksum file: the line naming it, or the first
// line when the file holds a bare digest.
func readDigest(ctx context.Context, o opener, file, name, alg string) string {
	rc, err := o.Open(ctx, file)
	if err != nil {
		return ""
	}
	defer rc.Close()
	sc := bufio.NewScanner(io.LimitReader(rc, sidecarLimit))
	first := true
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		h := normalizeDigest(fields[0], alg)
		if h == "" {
			first = false
			continue
		}
		if len(fields) == 1 && first {
			return h
		}
		if len(fields) >= 2 && strings.TrimPrefix(path.Base(fields[len(fields)-1]), "*") == name {
			return h
		}
		first = false
	}
	return ""
}

// normalizeDigest returns a hex digest of alg's length in lowercase, "" if it is not one.
func normalizeDigest(v, alg string) string {
	n := map[string]int{"sha256": 32, "sha512": 64, "sha1": 20, "md5": 16}[alg]
	b, err := hex.DecodeString(strings.TrimSpace(v))
	if err != nil || len(b) != n {
		return ""
	}
	return hex.EncodeToString(b)
}
