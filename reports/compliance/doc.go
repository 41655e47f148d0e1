// Package compliance builds the period report an auditor asks for from the evidence records of
// a period: per target, drills performed against the schedule, RTO and RPO against their
// objectives, failures and their remediation, the controls the evidence supports, and the
// provenance of every record used. It renders the report as JSON, Markdown, HTML (with its own
// SVG charts), a terminal table, and PDF through headless Chromium. It reads evidence; it never
// runs a drill or an audit.
package compliance
