// Package csidriver is a small directory-backed CSI driver (CSI spec v1.13.0) for tests.
//
// Volumes are directories under a root, snapshots are copies of them (reflinks where the
// filesystem can), volumes made from a snapshot or another volume are copies again, and
// NodePublishVolume bind-mounts the volume's directory onto the target path. Its state (volumes,
// snapshots, publications) lives in a JSON file under the root, so a restarted driver keeps what
// it made. The upstream hostpath driver is not served by the module proxy here; this one is kept
// honest by the CSI sanity suite (sanity_test.go), not by what firedrill happens to expect.
//
// It is a test driver: capacity is recorded, not enforced, and a snapshot of a volume that is
// being written is a file-by-file copy, not an atomic point in time.
package csidriver
