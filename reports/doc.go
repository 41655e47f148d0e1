// Package reports holds the result model of drills and audits. Subpackages store results
// (history), render them (render) and show progress (progress); reports never runs a drill.
package reports
