// Command kubelet is the upstream kubelet built from the k8s.io/kubernetes module at the version
// pinned in this tools module's go.mod (the same main as upstream's cmd/kubelet). The end-to-end
// cluster (integration/e2e) runs it against a private containerd.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	os.Exit(cli.Run(app.NewKubeletCommand(context.Background())))
}
