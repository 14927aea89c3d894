//go:build tools

// Package tools pins helm for hack/helm/build.sh: `go build helm.sh/helm/v3/cmd/helm` in this
// module builds the version in go.mod, with the dependency versions in go.sum.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
