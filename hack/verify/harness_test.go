package verify

// The harness: the Akeyless emulator and the provider as real processes, a client that mounts
// over the provider's Unix socket exactly as the Secrets Store CSI Driver does (gRPC,
// v1alpha1.CSIDriverProvider/Mount), and a scrape of /metrics parsed by Prometheus's own parser.
//
// env: PROVIDER_BIN     the binary under test (e.g. the static linux/arm64 one)
//      PROVIDER_RUNNER  optional program that runs it (e.g. qemu-aarch64)
//      EMULATOR_BIN     the `akeyless-emulator` binary (crates/akeyless-emulator)

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

const (
	accessID  = "p-verify"
	accessKey = "verify-access-key"
)

// The emulator's seed: one access-key auth method with read access to /verify/*.
const seed = `
auth_methods:
  - type: access_key
    access_id: p-verify
    access_key: verify-access-key
grants:
  - access_id: p-verify
    path: /verify/*
items:
  - type: static_secret
    name: /verify/password
    versions: [first-value, current-value]
  - type: rotated_secret
    name: /verify/db
    versions: [{username: app, password: rotated-value}]
`

func requireEnv(t *testing.T, key string) string {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		t.Fatalf("%s is not set (run hack/verify/run.sh)", key)
	}
	return v
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs a process until the test ends (SIGINT, then SIGKILL after 10 s). The returned
// channel is closed when it exits.
func start(t *testing.T, name string, argv []string, out io.Writer) <-chan struct{} {
	t.Helper()
	return startWithEnv(t, name, argv, nil, out)
}

// startWithEnv is start with exactly env as the environment (as in the image: nothing inherited).
func startWithEnv(t *testing.T, name string, argv, env []string, out io.Writer) <-chan struct{} {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{}, env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return done
}

// waitFor polls cond every 50 ms until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %s", timeout, what, detail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Emulator is a running Akeyless emulator.
type Emulator struct{ URL string }

func startEmulator(t *testing.T) *Emulator {
	t.Helper()
	seedFile := filepath.Join(t.TempDir(), "seed.yaml")
	if err := os.WriteFile(seedFile, []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	start(t, "emulator", []string{requireEnv(t, "EMULATOR_BIN"),
		"--listen", "127.0.0.1:0", "--seed", seedFile, "--log-format", "text"}, out)
	re := regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)
	var url string
	waitFor(t, "the emulator to listen", 30*time.Second, func() (bool, string) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			return true, ""
		}
		return false, out.String()
	})
	return &Emulator{URL: url}
}

// Admin calls the emulator's /__emulator/ admin API (fault injection).
func (e *Emulator) Admin(t *testing.T, route string, body any) {
	t.Helper()
	data, _ := json.Marshal(body)
	resp, err := http.Post(e.URL+"/__emulator/"+route, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("emulator %s: %s %s", route, resp.Status, b)
	}
}

// Provider is a running `serve`.
type Provider struct {
	Socket     string
	MetricsURL string
	HealthURL  string
	logs       *lockedBuffer
	conn       *grpc.ClientConn
}

// startProvider runs PROVIDER_BIN (through PROVIDER_RUNNER, if set) as `serve` on a socket in
// a fresh directory, with health and metrics on free loopback ports, and waits for /readyz.
func startProvider(t *testing.T, akeylessURL string) *Provider {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "providers", "akeyless.sock")
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	argv := []string{requireEnv(t, "PROVIDER_BIN"), "serve", "--endpoint", sock,
		"--akeyless-url", akeylessURL, "--health-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
		"--log-format", "json", "--log-level", "info"}
	if runner := os.Getenv("PROVIDER_RUNNER"); runner != "" {
		argv = append(strings.Fields(runner), argv...)
	}
	p := &Provider{Socket: sock, logs: &lockedBuffer{}}
	exited := start(t, "provider", argv, p.logs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provider log:\n%s", p.logs.String())
		}
	})
	// The bound addresses are in the start-up line.
	waitFor(t, "the provider's start-up log line", 60*time.Second, func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("the provider exited:\n%s", p.logs.String())
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			fields, _ := line["fields"].(map[string]any)
			if fields == nil {
				fields = line
			}
			if fields["message"] == "akeyless-csi-provider serving" {
				p.HealthURL = fmt.Sprintf("http://%v", fields["health"])
				p.MetricsURL = fmt.Sprintf("http://%v/metrics", fields["metrics"])
				return true, ""
			}
		}
		return false, p.logs.String()
	})
	// Ready: serving, and its own gRPC health check over the socket answers SERVING.
	waitFor(t, "/readyz", 60*time.Second, func() (bool, string) {
		resp, err := http.Get(p.HealthURL + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK, string(body)
	})
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p.conn = conn
	return p
}

// rawCodec passes protobuf bytes through: the messages are encoded by hand below (protowire),
// so this module needs no generated code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// Pod is the pod a mount is for.
type Pod struct{ Namespace, Name, UID, ServiceAccount string }

// MountRequest holds what the driver sends.
type MountRequest struct {
	Pod        Pod
	Parameters map[string]string // the SecretProviderClass's parameters
	Secrets    map[string]string // nodePublishSecretRef data; nil: none
}

// File is one file of a MountResponse.
type File struct {
	Path     string
	Mode     int32
	Contents string
}

// MountResponse is the provider's answer.
type MountResponse struct {
	Files    []File
	Versions map[string]string
}

func appendString(b []byte, field protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// encode builds the MountRequest bytes as the driver (v1.6) does: attributes are the
// parameters merged with kubelet's volume context, permission "420".
func (r MountRequest) encode() []byte {
	attrs := map[string]string{
		"secretProviderClass":                    "verify",
		"csi.storage.k8s.io/pod.name":            r.Pod.Name,
		"csi.storage.k8s.io/pod.namespace":       r.Pod.Namespace,
		"csi.storage.k8s.io/pod.uid":             r.Pod.UID,
		"csi.storage.k8s.io/serviceAccount.name": r.Pod.ServiceAccount,
		"csi.storage.k8s.io/ephemeral":           "true",
	}
	for k, v := range r.Parameters {
		attrs[k] = v
	}
	attributes, _ := json.Marshal(attrs)
	secrets := []byte("null")
	if r.Secrets != nil {
		secrets, _ = json.Marshal(r.Secrets)
	}
	var b []byte
	b = appendString(b, 1, string(attributes))
	b = appendString(b, 2, string(secrets))
	b = appendString(b, 3, "/var/lib/kubelet/pods/"+r.Pod.UID+"/volumes/kubernetes.io~csi/secrets/mount")
	b = appendString(b, 4, "420")
	return b
}

// fields iterates a message's fields.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, value []byte, varint uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch typ {
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := f(num, typ, v, 0); err != nil {
				return err
			}
			b = b[n:]
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := f(num, typ, nil, v); err != nil {
				return err
			}
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return nil
}

func decodeMountResponse(b []byte) (*MountResponse, error) {
	resp := &MountResponse{Versions: map[string]string{}}
	err := fields(b, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 1: // ObjectVersion{id=1, version=2}
			var id, version string
			err := fields(v, func(n protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				switch n {
				case 1:
					id = string(v)
				case 2:
					version = string(v)
				}
				return nil
			})
			resp.Versions[id] = version
			return err
		case 3: // File{path=1, mode=2, contents=3}
			var f File
			err := fields(v, func(n protowire.Number, _ protowire.Type, v []byte, x uint64) error {
				switch n {
				case 1:
					f.Path = string(v)
				case 2:
					f.Mode = int32(x)
				case 3:
					f.Contents = string(v)
				}
				return nil
			})
			resp.Files = append(resp.Files, f)
			return err
		}
		return nil
	})
	return resp, err
}

// Mount calls Mount over the socket. A failed mount returns its gRPC status.
func (p *Provider) Mount(t *testing.T, req MountRequest) (*MountResponse, *status.Status) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in, out := req.encode(), []byte(nil)
	err := p.conn.Invoke(ctx, "/v1alpha1.CSIDriverProvider/Mount", &in, &out, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		st, ok := status.FromError(err)
		if !ok || st.Code() == codes.Unavailable {
			t.Fatalf("Mount: %v", err)
		}
		return nil, st
	}
	resp, err := decodeMountResponse(out)
	if err != nil {
		t.Fatalf("MountResponse: %v", err)
	}
	return resp, nil
}

// Version calls Version over the socket.
func (p *Provider) Version(t *testing.T) (version, runtimeName, runtimeVersion string) {
	t.Helper()
	in, out := appendString(nil, 1, "v1alpha1"), []byte(nil)
	if err := p.conn.Invoke(context.Background(), "/v1alpha1.CSIDriverProvider/Version", &in, &out,
		grpc.ForceCodec(rawCodec{})); err != nil {
		t.Fatalf("Version: %v", err)
	}
	err := fields(out, func(n protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		switch n {
		case 1:
			version = string(v)
		case 2:
			runtimeName = string(v)
		case 3:
			runtimeVersion = string(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return
}

// Series is one scraped sample's labels (with __name__).
type Series = labels.Labels

// Scrape is /metrics as Prometheus reads it.
type Scrape struct {
	Text   string
	Series []Series
	// Families declared by # TYPE, name to type.
	Types map[string]string
}

// ScrapeMetrics reads /metrics and parses it with Prometheus's scrape parser, chosen by the
// response's Content-Type exactly as Prometheus chooses it.
func (p *Provider) ScrapeMetrics(t *testing.T) *Scrape {
	t.Helper()
	resp, err := http.Get(p.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", p.MetricsURL, resp.Status)
	}
	parser, err := textparse.New(body, resp.Header.Get("Content-Type"), nil, textparse.ParserOptions{})
	if err != nil {
		t.Fatalf("Content-Type %q: %v", resp.Header.Get("Content-Type"), err)
	}
	s := &Scrape{Text: string(body), Types: map[string]string{}}
	for {
		entry, err := parser.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Prometheus can't parse /metrics: %v\n%s", err, body)
		}
		switch entry {
		case textparse.EntryType:
			name, typ := parser.Type()
			s.Types[string(name)] = string(typ)
		case textparse.EntrySeries:
			var l labels.Labels
			parser.Labels(&l)
			s.Series = append(s.Series, l)
		}
	}
	return s
}

// Sample returns the value of the series with exactly these labels, as text.
func (s *Scrape) Sample(t *testing.T, name string, lbls ...string) string {
	t.Helper()
	want := labels.FromStrings(append([]string{"__name__", name}, lbls...)...)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})?\s+(\S+)`)
	for _, m := range re.FindAllStringSubmatch(s.Text, -1) {
		parser := textparse.NewPromParser([]byte(m[0]+"\n"), nil, false)
		if e, err := parser.Next(); err != nil || e != textparse.EntrySeries {
			continue
		}
		var l labels.Labels
		parser.Labels(&l)
		if labels.Equal(l, want) {
			return m[2]
		}
	}
	t.Fatalf("no series %s in /metrics:\n%s", want, s.Text)
	return ""
}

// closedPort returns a loopback address nothing listens on (for an unreachable gateway).
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
