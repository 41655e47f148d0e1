// Package docker runs a drill's throwaway PostgreSQL in a container (restore.runtime: docker),
// through the Docker Engine API: the materialised copy bind-mounted at its own path, no
// network, no capabilities, a read-only root filesystem, the image's database user, and labels
// by which the next drill of the same target finds and removes what a killed firedrill left.
package docker
