package docker

import "github.com/firedrill/firedrill/restore/drill"

func runtimeOpts(image string) drill.RuntimeOptions {
	return drill.RuntimeOptions{Kind: Name, Docker: drill.DockerOptions{Image: image}}
}
