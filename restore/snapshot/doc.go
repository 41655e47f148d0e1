// Package snapshot is the snapshot-taking core's model: what a snapshot is (its metadata) and
// how snapshots are ordered. Drivers live in subpackages: restore/snapshot/local (a directory
// repository); Kubernetes CSI VolumeSnapshots come next.
package snapshot
