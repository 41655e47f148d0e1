// Command kube-apiserver is the upstream Kubernetes API server, built from the k8s.io/kubernetes
// module at the version pinned in go.mod (the same main as upstream's cmd/kube-apiserver). It
// lives in its own module so the API server's dependency tree never enters firedrill's go.mod;
// the integration harness runs it, with etcd, through controller-runtime's envtest.
package main

import (
	"os"
	_ "time/tzdata" // for timeZone support in CronJob

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
