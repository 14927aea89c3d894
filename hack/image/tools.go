//go:build tools

// Package tools pins crane for hack/image/build.sh: `go build
// github.com/google/go-containerregistry/cmd/crane` in this module builds the version in go.mod.
package tools

import _ "github.com/google/go-containerregistry/cmd/crane"
