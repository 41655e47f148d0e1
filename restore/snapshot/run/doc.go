// Package run is the library runner of "take a snapshot (or a group's), then apply retention":
// every selected target is attempted whatever failed before, each success is followed by the
// target's retention rules, and every outcome goes to a sink as it is known. The CLI and a
// daemon call the same runner with their own client factory and sink; the runner builds no
// client itself (Kubernetes clients come from the factory, once per kubeconfig).
package run
