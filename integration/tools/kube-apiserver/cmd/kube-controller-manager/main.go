// Command kube-controller-manager is the upstream controller manager built from the
// k8s.io/kubernetes module pinned in go.mod (PV binder, garbage collector, ServiceAccounts, Jobs
// and CronJobs for the end-to-end cluster in integration/e2e).
package main

import (
	"os"
	_ "time/tzdata" // for CronJob time zones

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
