//go:build tools

// Package tools pins promtool for hack/verify/run.sh: `go build -tags remove_all_sd
// github.com/prometheus/prometheus/cmd/promtool` in this module builds the version in go.mod.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
