// Package sandbox runs a program (the throwaway PostgreSQL, or a tool on its stopped copy) in
// new mount, PID, IPC, UTS and (usually) network namespaces, under an unprivileged uid, on a
// private root filesystem that shows the system's binaries and libraries read-only, the
// drill's scratch directory read-write at its own absolute path, and nothing else of the host.
//
// firedrill re-executes itself (github.com/moby/sys/reexec) as the namespace's PID 1, which
// builds that root, pivots into it, and runs the program as the sandbox uid with no
// capabilities and no supplementary groups. Because it is PID 1, every process inside dies with
// it. Callers must call reexec.Init() first thing in main (and in TestMain of test packages
// that start sandboxed programs). Linux only. Not root, the sandbox lives in a user namespace
// (where the kernel allows unprivileged ones), and the program runs as the caller's own uid.
package sandbox
