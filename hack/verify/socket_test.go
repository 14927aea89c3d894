package verify

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// TestShippedBinaryMountsOverItsSocket runs the binary under test as `serve` (under qemu-user
// for another architecture) and mounts over its Unix socket as the CSI driver does, against the
// Akeyless emulator: files, modes, object versions, a re-mount, an error, and /metrics.
func TestShippedBinaryMountsOverItsSocket(t *testing.T) {
	emu := startEmulator(t)
	p := startProvider(t, emu.URL)

	version, name, runtimeVersion := p.Version(t)
	if version != "v1alpha1" || name != "akeyless-csi-provider" || !regexp.MustCompile(`^\d+\.\d+\.\d+`).MatchString(runtimeVersion) {
		t.Errorf("Version: %q %q %q", version, name, runtimeVersion)
	}

	pod := Pod{Namespace: "team-a", Name: "web-0", UID: "uid-web-0", ServiceAccount: "web"}
	req := MountRequest{
		Pod: pod,
		Parameters: map[string]string{
			"akeylessAccessID": accessID,
			"objects": `
- secretPath: /verify/password
  fileName: password
- secretPath: /verify/password
  fileName: password-v1
  version: 1
- secretPath: /verify/db
  fileName: db/password
  key: password
  mode: "0400"
`,
		},
		Secrets: map[string]string{"akeylessAccessKey": accessKey},
	}
	first, st := p.Mount(t, req)
	if st != nil {
		t.Fatalf("mount failed: %v", st)
	}
	var got []string
	for _, f := range first.Files {
		got = append(got, fmt.Sprintf("%s %04o %s", f.Path, f.Mode, f.Contents))
	}
	sort.Strings(got)
	want := []string{
		"db/password 0400 rotated-value",
		"password 0644 current-value",
		"password-v1 0644 first-value",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if first.Versions["password-v1"] != "1" || !strings.HasPrefix(first.Versions["password"], "h-") ||
		!strings.HasPrefix(first.Versions["db/password"], "h-") || len(first.Versions) != 3 {
		t.Errorf("object versions: %v", first.Versions)
	}

	// The driver re-mounts periodically: same content, same versions.
	again, st := p.Mount(t, req)
	if st != nil {
		t.Fatalf("re-mount failed: %v", st)
	}
	for id, v := range first.Versions {
		if again.Versions[id] != v {
			t.Errorf("re-mount: version of %s changed from %s to %s", id, v, again.Versions[id])
		}
	}

	// A missing item fails the whole mount with a code and the object's name.
	req.Parameters["objects"] = "- secretPath: /verify/missing\n  fileName: missing\n"
	if _, st := p.Mount(t, req); st == nil || st.Code() != codes.NotFound ||
		!strings.HasPrefix(st.Message(), "[NotFound]") || !strings.Contains(st.Message(), "missing") {
		t.Errorf("missing item: %v, want NotFound naming the object", st)
	}

	m := p.ScrapeMetrics(t)
	for _, c := range []struct {
		name string
		lbls []string
		want string
	}{
		{"akeyless_csi_provider_mounts_total", []string{"result", "ok", "code", "none"}, "2"},
		{"akeyless_csi_provider_mounts_total", []string{"result", "error", "code", "NotFound"}, "1"},
		{"akeyless_csi_provider_auth_cache_hits_total", nil, "2"},
		{"akeyless_csi_provider_auth_cache_misses_total", nil, "1"},
		{"akeyless_csi_provider_inflight_mounts", nil, "0"},
	} {
		if v := m.Sample(t, c.name, c.lbls...); v != c.want {
			t.Errorf("%s%v = %s, want %s", c.name, c.lbls, v, c.want)
		}
	}
	t.Logf("3 mounts over %s: files %v, versions %v", p.Socket, got, first.Versions)
}
