package harness

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The suite is compiled against each tested driver version's own dependency graph (see
// tests/e2e/suite/modfiles), from gRPC v1.56 and client-go v0.26 (driver v1.4/v1.5) to gRPC
// v1.79 and client-go v0.30 (v1.6), so it uses only APIs all of them have: these helpers stand
// in for k8s.io/utils/ptr (not in v1.4's k8s.io/utils) and grpc.NewClient (gRPC ≥ v1.63).

// Ptr returns a pointer to v.
func Ptr[T any](v T) *T { return &v }

// Deref returns *p, or def when p is nil.
func Deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// DialUnix returns a plaintext gRPC client connection to the Unix socket at path. It connects
// lazily, on the first call, like grpc.NewClient.
func DialUnix(path string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}),
	}, opts...)
	//nolint:staticcheck // grpc.NewClient does not exist in the gRPC of driver v1.4/v1.5.
	return grpc.Dial("unix://"+path, opts...)
}
