// A stand-in for monis.app/mlog, which the Go module proxy refuses to serve (403 Forbidden for
// every version), but which the Secrets Store CSI Driver imports for log setup. It provides the
// handful of identifiers the driver uses, backed by klog. Used through `replace` in the driver's
// wrapper module and in the conformance harness; it changes nothing on the provider protocol path.
module monis.app/mlog

go 1.22

require k8s.io/klog/v2 v2.120.1

require github.com/go-logr/logr v1.4.1 // indirect
