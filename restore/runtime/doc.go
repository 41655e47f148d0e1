// Package runtime is where throwaway databases run. Each runtime lives in a subpackage:
// restore/runtime/local (a local server process); a Kubernetes pod and Docker come next.
package runtime
