package postgres

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNoBinaries means no PostgreSQL server binaries of the wanted major version were found.
var ErrNoBinaries = errors.New("PostgreSQL server binaries not found")

// binDirCandidates are where distributions install server binaries, by major version.
func binDirCandidates(major string) []string {
	return []string{
		"/usr/lib/postgresql/" + major + "/bin",          // Debian, Ubuntu
		"/usr/pgsql-" + major + "/bin",                   // PGDG RPMs
		"/opt/homebrew/opt/postgresql@" + major + "/bin", // Homebrew (Apple silicon)
		"/usr/local/opt/postgresql@" + major + "/bin",    // Homebrew (Intel)
		"/usr/local/pgsql/bin",                           // source builds
		"/usr/bin",
	}
}

// FindBinDir returns a directory holding the server binaries (postgres, initdb, pg_checksums)
// of PostgreSQL major version major ("15"). An override is checked and returned as is. With an
// empty major, the newest version under /usr/lib/postgresql is taken.
func FindBinDir(major, override string) (string, error) {
	if override != "" {
		if err := checkBinDir(override, major); err != nil {
			return "", err
		}
		return override, nil
	}
	if major == "" {
		if m := newestDebianMajor(); m != "" {
			major = m
		}
	}
	var tried []string
	for _, dir := range binDirCandidates(major) {
		tried = append(tried, dir)
		if checkBinDir(dir, major) == nil {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		dir := filepath.Dir(p)
		if checkBinDir(dir, major) == nil {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	return "", fmt.Errorf("%w for major version %q (looked in %s); install them (Debian/Ubuntu: apt-get install postgresql-%s postgresql-contrib-%s) or set restore.local.binDir",
		ErrNoBinaries, major, strings.Join(tried, ", "), orX(major), orX(major))
}

func orX(major string) string {
	if major == "" {
		return "15"
	}
	return major
}

func newestDebianMajor() string {
	entries, err := os.ReadDir("/usr/lib/postgresql")
	if err != nil {
		return ""
	}
	best := 0
	for _, e := range entries {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "%d", &n); err == nil && n > best {
			if _, err := os.Stat(filepath.Join("/usr/lib/postgresql", e.Name(), "bin", "postgres")); err == nil {
				best = n
			}
		}
	}
	if best == 0 {
		return ""
	}
	return fmt.Sprint(best)
}

// checkBinDir verifies dir has a postgres binary of the wanted major version.
func checkBinDir(dir, major string) error {
	bin := filepath.Join(dir, "postgres")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w: no %s", ErrNoBinaries, bin)
	}
	if major == "" {
		return nil
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return fmt.Errorf("while running %s --version: %w", bin, err)
	}
	// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
	fields := strings.Fields(string(out))
	if len(fields) < 3 || majorOf(fields[2]) != major {
		return fmt.Errorf("%w: %s is %q, not major version %s", ErrNoBinaries, bin, strings.TrimSpace(string(out)), major)
	}
	return nil
}

// majorOf returns the major version of a version string: "15.18" -> "15", "9.6.3" -> "9.6".
func majorOf(v string) string {
	// Development builds: "17beta1", "18devel", "16rc1".
	if i := strings.IndexFunc(v, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i > 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) >= 2 && (parts[0] == "9" || parts[0] == "8") {
		return parts[0] + "." + parts[1]
	}
	return parts[0]
}

// ReadPGVersion returns the major version recorded in a data directory's PG_VERSION file.
func ReadPGVersion(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION"))
	if err != nil {
		return "", fmt.Errorf("while reading the major version of data directory %s: %w", dataDir, err)
	}
	return strings.TrimSpace(string(b)), nil
}
