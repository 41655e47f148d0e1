package local

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/firedrill/firedrill/restore/engine/postgres"
)

// Sandbox uids: SandboxUIDBase plus an offset taken from the drill id, so that concurrent
// drills run as different users. No account has them (checked), so the server owns nothing but
// its scratch copy. The range sits far above the uids distributions and container runtimes
// hand out (below 2^31).
const (
	SandboxUIDBase  uint32 = 0x7F000000 // 2130706432
	SandboxUIDRange uint32 = 1 << 16
)

// SandboxUserName is what the isolation record and the sandbox's /etc/passwd call it.
const SandboxUserName = "(sandbox)"

// User sources for the isolation record.
const (
	UserFromSandbox   = "sandbox"   // a uid no account has, chosen for this drill
	UserFromRunAsUser = "runAsUser" // restore.local.runAsUser, as configured
	UserFromCurrent   = "current"   // firedrill's own user (not root: no other is possible)
)

// ResolveRunAs picks the user the throwaway server runs as: as root, restore.local.runAsUser
// when set (honoured as configured), else a sandbox uid for this drill; not root, the current
// user.
func ResolveRunAs(runAsUser, drillID string) (postgres.RunAs, string, error) {
	if os.Geteuid() != 0 {
		r, err := postgres.ResolveRunAs(runAsUser)
		return r, UserFromCurrent, err
	}
	if runAsUser != "" {
		r, err := postgres.ResolveRunAs(runAsUser)
		return r, UserFromRunAsUser, err
	}
	id, err := pickSandboxID(drillID, idTaken)
	if err != nil {
		return postgres.RunAs{}, "", err
	}
	return postgres.NewRunAs(SandboxUserName, id, id), UserFromSandbox, nil
}

// pickSandboxID returns the first id at or after the drill's offset in the sandbox range that
// taken does not claim.
func pickSandboxID(drillID string, taken func(uint32) bool) (uint32, error) {
	h := fnv.New32a()
	h.Write([]byte(drillID))
	off := h.Sum32() % SandboxUIDRange
	for i := uint32(0); i < SandboxUIDRange; i++ {
		id := SandboxUIDBase + (off+i)%SandboxUIDRange
		if !taken(id) {
			return id, nil
		}
	}
	return 0, errors.New("no free sandbox uid: every uid in the sandbox range has an account or a running process")
}

// idTaken reports whether an account or group has id, or a running process (another drill's
// server) runs as it.
func idTaken(id uint32) bool {
	s := strconv.FormatUint(uint64(id), 10)
	if _, err := user.LookupId(s); err == nil {
		return true
	}
	if _, err := user.LookupGroupId(s); err == nil {
		return true
	}
	return uidRunning(id)
}

// uidRunning reports whether a process runs with real or effective uid id.
func uidRunning(id uint32) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
				f := strings.Fields(rest)
				if len(f) >= 2 && (f[0] == fmt.Sprint(id) || f[1] == fmt.Sprint(id)) {
					return true
				}
				break
			}
		}
	}
	return false
}
