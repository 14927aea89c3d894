package harness

import (
	_ "github.com/container-storage-interface/spec/lib/go/csi"
	_ "google.golang.org/grpc"
	_ "k8s.io/client-go/kubernetes"
	_ "sigs.k8s.io/secrets-store-csi-driver/pkg/client/clientset/versioned"
	_ "sigs.k8s.io/secrets-store-csi-driver/pkg/secrets-store"
	_ "sigs.k8s.io/secrets-store-csi-driver/pkg/util/fileutil"
	_ "sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)
