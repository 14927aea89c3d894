package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// BrokenProxy is a provider socket that forwards every call to our provider. It records every
// Mount request it forwards, so tests can show exactly what a driver version sent, and it can
// corrupt the Mount response, so tests can show that a misbehaving provider fails with the
// driver's own error (the harness can fail).
type BrokenProxy struct {
	v1alpha1.UnimplementedCSIDriverProviderServer
	upstream v1alpha1.CSIDriverProviderClient
	conn     *grpc.ClientConn
	srv      *grpc.Server

	mu       sync.Mutex
	corrupt  func(*v1alpha1.MountResponse)
	requests []*v1alpha1.MountRequest
}

// StartBrokenProxy serves dir/name.sock, forwarding to upstreamSocket.
func StartBrokenProxy(dir, name, upstreamSocket string, corrupt func(*v1alpha1.MountResponse)) (*BrokenProxy, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	conn, err := DialUnix(upstreamSocket)
	if err != nil {
		return nil, err
	}
	socket := filepath.Join(dir, name+".sock")
	_ = os.Remove(socket)
	lis, err := net.Listen("unix", socket)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("listen %s: %w", socket, err)
	}
	p := &BrokenProxy{upstream: v1alpha1.NewCSIDriverProviderClient(conn), conn: conn, srv: grpc.NewServer(), corrupt: corrupt}
	v1alpha1.RegisterCSIDriverProviderServer(p.srv, p)
	go func() { _ = p.srv.Serve(lis) }()
	return p, nil
}

// SetCorruption replaces the corruption applied to later responses.
func (p *BrokenProxy) SetCorruption(corrupt func(*v1alpha1.MountResponse)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.corrupt = corrupt
}

// Requests returns copies of the Mount requests forwarded so far, oldest first. They hold the
// pods' tokens: compare them, never print them.
func (p *BrokenProxy) Requests() []*v1alpha1.MountRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*v1alpha1.MountRequest, len(p.requests))
	for i, r := range p.requests {
		out[i] = proto.Clone(r).(*v1alpha1.MountRequest)
	}
	return out
}

// Mount records, forwards and corrupts.
func (p *BrokenProxy) Mount(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	p.mu.Lock()
	p.requests = append(p.requests, proto.Clone(req).(*v1alpha1.MountRequest))
	corrupt := p.corrupt
	p.mu.Unlock()
	resp, err := p.upstream.Mount(ctx, req)
	if err != nil {
		return nil, err
	}
	corrupt(resp)
	return resp, nil
}

// Version forwards.
func (p *BrokenProxy) Version(ctx context.Context, req *v1alpha1.VersionRequest) (*v1alpha1.VersionResponse, error) {
	return p.upstream.Version(ctx, req)
}

// Stop stops serving and closes the upstream connection.
func (p *BrokenProxy) Stop() {
	p.srv.Stop()
	p.conn.Close()
}
