// Package conformance calls the provider exactly as the Secrets Store CSI Driver does, with the
// driver's own code: the provider client (`pkg/secrets-store`: NewPluginClientBuilder, Get,
// MountContent) and its atomic file writer (`pkg/util/fileutil`), at the driver version the
// suite is compiled against (run.sh: one run per version of tests/e2e/lib.sh, each with that
// version's dependency graph, E2E_DRIVER_VERSION). What the driver accepts, and the errors it
// raises, are the driver's, not ours.
//
// It needs only the provider binary (E2E_PROVIDER_BIN); it starts the Akeyless emulator and the
// provider itself. Kubernetes auth here uses tokens minted by the emulator; the driver suite
// (../driver) uses tokens from a real kube-apiserver.
package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	secretsstore "sigs.k8s.io/secrets-store-csi-driver/pkg/secrets-store"
	"sigs.k8s.io/secrets-store-csi-driver/pkg/util/fileutil"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/akeyless-csi-provider/tests/e2e/suite/internal/harness"
)

const (
	accessID  = "p-conformance"
	accessKey = "conformance-access-key"
	k8sID     = "p-conformance-k8s"
	k8sConfig = "emulator-k8s"
	audience  = "akeyless"
)

var (
	emulator *harness.Emulator
	provider *harness.Provider
	workDir  string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	env, err := harness.MustEnv("E2E_PROVIDER_BIN", "E2E_EMULATOR_BIN", "E2E_DRIVER_VERSION")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: the provider client and atomic writer of Secrets Store CSI Driver %s\n", env["E2E_DRIVER_VERSION"])
	workDir, err = os.MkdirTemp(os.Getenv("E2E_WORK_DIR"), "conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logDir := filepath.Join(workDir, "logs")
	emulator, err = harness.StartEmulator(env["E2E_EMULATOR_BIN"], logDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer emulator.Stop()
	err = emulator.Seed(map[string]any{
		"auth_methods": []map[string]any{
			{"type": "access_key", "access_id": accessID, "access_key": accessKey},
			{"type": "k8s", "access_id": k8sID, "config_name": k8sConfig,
				"bound_namespaces": []string{"team-a"}, "audience": audience},
		},
		"grants": []map[string]any{
			{"access_id": accessID, "path": "/conformance/*"},
			{"access_id": k8sID, "path": "/conformance/*", "namespaces": []string{"team-a"}},
		},
		"items": []map[string]any{
			{"type": "static_secret", "name": "/conformance/password", "versions": []string{"pw-v1", "pw-v2"}},
			{"type": "static_secret", "name": "/conformance/config", "versions": []string{`{"username":"app","port":5432}`}},
			{"type": "static_secret", "name": "/conformance/rotating", "versions": []string{"r-v1"}},
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	provider, err = harness.StartProvider(env["E2E_PROVIDER_BIN"], logDir, filepath.Join(workDir, "providers"), emulator.URL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer provider.Stop()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "--- provider log (last 30 lines)\n%s\n", provider.Proc.Tail(30))
	} else {
		os.RemoveAll(workDir)
	}
	return code
}

// pod is the identity the driver describes in a mount's attributes.
type pod struct {
	namespace, name, uid, serviceAccount string
}

func newPod(namespace string) pod {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	u := hex.EncodeToString(b)
	return pod{namespace: namespace, name: "app-" + u[:6], serviceAccount: "app",
		uid: fmt.Sprintf("%s-%s-%s-%s-%s", u[:8], u[8:12], u[12:16], u[16:20], u[20:])}
}

// attributes builds the Mount `attributes` as nodeserver.go does: the SPC parameters, then
// every volume-context key kubelet sends copied over them, then the tokens.
func (p pod) attributes(parameters map[string]string, tokens string) string {
	attrs := maps.Clone(parameters)
	maps.Copy(attrs, map[string]string{
		"secretProviderClass":                    "conformance",
		"csi.storage.k8s.io/pod.name":            p.name,
		"csi.storage.k8s.io/pod.namespace":       p.namespace,
		"csi.storage.k8s.io/pod.uid":             p.uid,
		"csi.storage.k8s.io/serviceAccount.name": p.serviceAccount,
		"csi.storage.k8s.io/ephemeral":           "true",
	})
	if tokens != "" {
		attrs["csi.storage.k8s.io/serviceAccount.tokens"] = tokens
	}
	b, _ := json.Marshal(attrs)
	return string(b)
}

// targetPath is a kubelet-shaped target path under a temp dir (the driver parses it).
func (p pod) targetPath(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "var/lib/kubelet/pods", p.uid, "volumes/kubernetes.io~csi/secrets/mount")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tokensFor mints the pod's token and lays it out as kubelet's serviceAccount.tokens value.
func tokensFor(t *testing.T, p pod, aud string) string {
	t.Helper()
	token, err := emulator.IssueSAToken(p.namespace, p.serviceAccount, p.name, p.uid, aud)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{aud: map[string]string{
		"token": token, "expirationTimestamp": time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	}})
	return string(b)
}

// driverSecrets marshals the nodePublishSecretRef data as the driver does (a nil map is `null`).
func driverSecrets(data map[string]string) string {
	b, _ := json.Marshal(data)
	return string(b)
}

// driverPermission is what the driver sends: json.Marshal(os.FileMode(0644)).
func driverPermission() string {
	b, _ := json.Marshal(os.FileMode(0o644))
	return string(b)
}

// client returns a provider client built by the driver's own PluginClientBuilder, with the
// options the driver's main passes, for the providers directory dir.
func client(t *testing.T, dir string) v1alpha1.CSIDriverProviderClient {
	t.Helper()
	builder := secretsstore.NewPluginClientBuilder([]string{dir},
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(4*1024*1024)))
	t.Cleanup(builder.Cleanup)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := builder.Get(ctx, "akeyless")
	if err != nil {
		t.Fatalf("driver's PluginClientBuilder.Get: %v", err)
	}
	return c
}

// mount is the driver's MountContent call: Mount RPC, response checks, atomic write.
func mount(t *testing.T, c v1alpha1.CSIDriverProviderClient, attributes, secrets, target string) (map[string]string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return secretsstore.MountContent(ctx, c, attributes, secrets, target, driverPermission(), nil)
}

func accessKeyParams(objects string) map[string]string {
	return map[string]string{
		"akeylessGatewayURL": emulator.URL,
		"akeylessAccessID":   accessID,
		"objects":            objects,
	}
}

func k8sParams(objects string) map[string]string {
	return map[string]string{
		"akeylessGatewayURL":        emulator.URL,
		"akeylessAccessType":        "k8s",
		"akeylessAccessID":          k8sID,
		"akeylessK8sAuthConfigName": k8sConfig,
		"objects":                   objects,
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// dataDir is where the atomic writer's `..data` symlink points (changes on every write).
func dataDir(t *testing.T, target string) string {
	t.Helper()
	d, err := os.Readlink(filepath.Join(target, "..data"))
	if err != nil {
		t.Fatalf("the driver's atomic writer left no ..data link: %v", err)
	}
	return d
}

const objects = `
- secretPath: /conformance/password
  fileName: password
- secretPath: /conformance/config
  fileName: db/username
  key: username
  mode: "0400"
`

func TestMountWritesFilesWithDriverAtomicWriter(t *testing.T) {
	p := newPod("team-a")
	target := p.targetPath(t)
	versions, code, err := mount(t, client(t, provider.Dir),
		p.attributes(accessKeyParams(objects), ""), driverSecrets(map[string]string{"akeylessAccessKey": accessKey}), target)
	if err != nil {
		t.Fatalf("MountContent: %v (code %q)", err, code)
	}
	if got := readFile(t, filepath.Join(target, "password")); got != "pw-v2" {
		t.Errorf("password = %q, want the latest version", got)
	}
	if got := readFile(t, filepath.Join(target, "db/username")); got != "app" {
		t.Errorf("db/username = %q", got)
	}
	if m := mode(t, filepath.Join(target, "password")); m != 0o644 {
		t.Errorf("password mode = %o, want the driver's default 0644", m)
	}
	if m := mode(t, filepath.Join(target, "db/username")); m != 0o400 {
		t.Errorf("db/username mode = %o, want 0400", m)
	}
	dataDir(t, target)
	if len(versions) != 2 || !strings.HasPrefix(versions["password"], "h-") || versions["db/username"] == "" {
		t.Errorf("object versions = %v, want one per object, id = fileName", versions)
	}
	// The driver's own reader of mounted files (used for Kubernetes Secret sync) sees them.
	files, err := fileutil.GetMountedFiles(target)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["db/username"]; !ok {
		t.Errorf("GetMountedFiles = %v, want db/username", files)
	}
}

func TestNullSecretsWithKubernetesAuth(t *testing.T) {
	p := newPod("team-a")
	target := p.targetPath(t)
	// No nodePublishSecretRef: the driver sends `null`.
	secrets := driverSecrets(nil)
	if secrets != "null" {
		t.Fatalf("driver-style secrets = %q, want null", secrets)
	}
	_, code, err := mount(t, client(t, provider.Dir), p.attributes(k8sParams(objects), tokensFor(t, p, audience)), secrets, target)
	if err != nil {
		t.Fatalf("MountContent: %v (code %q)", err, code)
	}
	if got := readFile(t, filepath.Join(target, "password")); got != "pw-v2" {
		t.Errorf("password = %q", got)
	}
}

func TestPinnedVersionIsTheObjectVersion(t *testing.T) {
	p := newPod("team-a")
	target := p.targetPath(t)
	versions, _, err := mount(t, client(t, provider.Dir), p.attributes(accessKeyParams(`
- secretPath: /conformance/password
  fileName: old
  version: 1
`), ""), driverSecrets(map[string]string{"akeylessAccessKey": accessKey}), target)
	if err != nil {
		t.Fatal(err)
	}
	if versions["old"] != "1" || readFile(t, filepath.Join(target, "old")) != "pw-v1" {
		t.Errorf("versions = %v, content = %q", versions, readFile(t, filepath.Join(target, "old")))
	}
}

func TestRemountUnchangedIsNoRewriteAndRotationRewrites(t *testing.T) {
	p := newPod("team-a")
	target := p.targetPath(t)
	c := client(t, provider.Dir)
	attrs := p.attributes(accessKeyParams("- secretPath: /conformance/rotating\n  fileName: value\n"), "")
	secrets := driverSecrets(map[string]string{"akeylessAccessKey": accessKey})
	v1, _, err := mount(t, c, attrs, secrets, target)
	if err != nil {
		t.Fatal(err)
	}
	first := dataDir(t, target)

	v2, _, err := mount(t, c, attrs, secrets, target)
	if err != nil {
		t.Fatal(err)
	}
	if v2["value"] != v1["value"] {
		t.Errorf("unchanged content changed the object version: %v -> %v", v1, v2)
	}
	if again := dataDir(t, target); again != first {
		t.Errorf("unchanged content was rewritten: ..data %s -> %s", first, again)
	}

	if _, err := emulator.PutStaticSecret("/conformance/rotating", "r-v2"); err != nil {
		t.Fatal(err)
	}
	v3, _, err := mount(t, c, attrs, secrets, target)
	if err != nil {
		t.Fatal(err)
	}
	if v3["value"] == v1["value"] {
		t.Errorf("new content kept object version %q", v1["value"])
	}
	if got := readFile(t, filepath.Join(target, "value")); got != "r-v2" {
		t.Errorf("value = %q after rotation", got)
	}
	if dataDir(t, target) == first {
		t.Error("rotation did not write a new ..data directory")
	}
}

func TestProviderErrorIsACodedStatusAndNoFiles(t *testing.T) {
	p := newPod("team-a")
	target := p.targetPath(t)
	_, _, err := mount(t, client(t, provider.Dir), p.attributes(accessKeyParams(objects+`
- secretPath: /conformance/missing
  fileName: missing
`), ""), driverSecrets(map[string]string{"akeylessAccessKey": accessKey}), target)
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "[NotFound]") {
		t.Fatalf("err = %v, want a NotFound status with a [NotFound] message", err)
	}
	if n := entryCount(t, target); n != 0 {
		t.Errorf("a failed mount wrote %d entries", n)
	}

	// Another namespace's pod is refused by Akeyless and gets nothing.
	other := newPod("team-b")
	target = other.targetPath(t)
	_, _, err = mount(t, client(t, provider.Dir), other.attributes(k8sParams(objects), tokensFor(t, other, audience)), driverSecrets(nil), target)
	if err == nil || !strings.Contains(err.Error(), "[AuthFailed]") {
		t.Fatalf("team-b mount err = %v, want [AuthFailed]", err)
	}
	if n := entryCount(t, target); n != 0 {
		t.Errorf("a refused mount wrote %d entries", n)
	}
}

// entryCount is the number of entries in dir, which must exist and be readable: an unreadable
// target would otherwise pass for an empty one.
func entryCount(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	return len(entries)
}

// listing names the entries under dir (recursively), or nil when dir does not exist.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		names = append(names, path)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	return names
}

// The secrets-store-sync-controller (sigs.k8s.io/secrets-store-sync-controller) sends a fake
// target path, `{}` secrets and tokens it minted, and reads `files` without writing them. Its
// module is not served by the Go module proxy here, so this replays its request shape with the
// driver's client (the controller's client is a copy of it).
func TestSyncControllerShapedRequest(t *testing.T) {
	p := newPod("team-a")
	c := client(t, provider.Dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	attrs := map[string]string{}
	_ = json.Unmarshal([]byte(p.attributes(k8sParams(objects), tokensFor(t, p, audience))), &attrs)
	delete(attrs, "secretProviderClass")
	delete(attrs, "csi.storage.k8s.io/ephemeral")
	b, _ := json.Marshal(attrs)
	// The fake target path must never be written: whatever is (or isn't) there stays as it was.
	const fakeTarget = "/mnt/secrets-store"
	before := listing(t, fakeTarget)
	resp, err := c.Mount(ctx, &v1alpha1.MountRequest{
		Attributes: string(b), Secrets: "{}", TargetPath: fakeTarget, Permission: "420",
	})
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	if len(resp.GetObjectVersion()) != 2 || len(resp.GetFiles()) != 2 {
		t.Fatalf("got %d versions and %d files, want 2 and 2", len(resp.GetObjectVersion()), len(resp.GetFiles()))
	}
	if err := fileutil.Validate(resp.GetFiles()); err != nil {
		t.Errorf("driver's fileutil.Validate: %v", err)
	}
	if after := listing(t, fakeTarget); !slices.Equal(before, after) {
		t.Errorf("the provider changed %s: before %v, after %v", fakeTarget, before, after)
	}
}

func startBrokenProxy(t *testing.T, corrupt func(*v1alpha1.MountResponse)) string {
	t.Helper()
	dir, err := os.MkdirTemp(workDir, "broken-")
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := harness.StartBrokenProxy(dir, "akeyless", provider.Socket, corrupt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	return dir
}

func TestBrokenResponsesFailWithTheDriversErrors(t *testing.T) {
	secrets := driverSecrets(map[string]string{"akeylessAccessKey": accessKey})
	cases := []struct {
		name    string
		corrupt func(*v1alpha1.MountResponse)
		want    string
	}{
		{"dot-dot path", func(r *v1alpha1.MountResponse) { r.Files[0].Path = "../escape" },
			"invalid path: must not contain '..'"},
		{"absolute path", func(r *v1alpha1.MountResponse) { r.Files[0].Path = "/etc/escape" },
			"invalid path: must be relative path"},
		{"unclean path", func(r *v1alpha1.MountResponse) { r.Files[0].Path = "db//username" },
			"invalid filepath"},
		{"reserved ..prefix", func(r *v1alpha1.MountResponse) { r.Files[0].Path = "..data2" },
			"invalid path: must not start with '..'"},
		{"missing object versions", func(r *v1alpha1.MountResponse) { r.ObjectVersion = nil },
			"missing object versions"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := startBrokenProxy(t, tc.corrupt)
			p := newPod("team-a")
			target := p.targetPath(t)
			_, _, err := mount(t, client(t, dir), p.attributes(accessKeyParams(objects), ""), secrets, target)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("MountContent err = %v, want the driver's %q", err, tc.want)
			}
			if n := entryCount(t, target); n != 0 {
				t.Errorf("the driver wrote %d entries for a rejected response", n)
			}
		})
	}
}
