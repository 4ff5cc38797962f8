// Package scripts tests the shell scripts under scripts/ that a user runs
// (go test ./scripts). The daemon demo's test runs scripts/demo.sh as a user
// would; as root it runs it in a network namespace of its own with only
// loopback up, so the demo cannot reach anything else.
package scripts

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"halb/appliance/config"
)

// buildBinaries builds halbd, halbctl and netlab into a temporary directory.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/halbd", "./cmd/halbctl", "./cmd/netlab")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// isolated returns how to run argv with no network but loopback: as root a
// new network namespace (unshare -n), else a user namespace with one
// (unshare -rn) when the kernel allows it; nil when neither works.
func isolated(t *testing.T, argv ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		return nil
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil
	}
	flags := "-n"
	if os.Geteuid() != 0 {
		flags = "-rn"
	}
	if exec.Command("unshare", flags, "true").Run() != nil {
		return nil
	}
	// Only lo exists in the new namespace; it starts down.
	return append([]string{"unshare", flags, "sh", "-c", `ip link set lo up && exec "$@"`, "sh"}, argv...)
}

var (
	ipv4Literal = regexp.MustCompile(`\b\d{1,3}(?:\.\d{1,3}){3}\b`)
	ipv6Literal = regexp.MustCompile(`\[([0-9a-fA-F:.]+)\]`)
)

// example matches the examples in error messages ("(e.g. 172.16.0.100/24)").
var example = regexp.MustCompile(`\(e\.g\. [^)]*\)`)

// nonLoopback lists the IP literals in text that are not loopback addresses
// (examples in error messages aside).
func nonLoopback(text string) []string {
	text = example.ReplaceAllString(text, "")
	var bad []string
	for _, s := range ipv4Literal.FindAllString(text, -1) {
		if a, err := netip.ParseAddr(s); err != nil || !a.IsLoopback() {
			bad = append(bad, s)
		}
	}
	for _, m := range ipv6Literal.FindAllStringSubmatch(text, -1) {
		if a, err := netip.ParseAddr(m[1]); err == nil && !a.IsLoopback() {
			bad = append(bad, m[1])
		}
	}
	return bad
}

// loopbackOnlyConfig fails t unless every address cfg makes halbd use is a
// loopback IP literal (a host name could resolve to anything): listeners,
// servers; and nothing that reaches out on its own (VRRP, peers, time
// servers, the management link).
func loopbackOnlyConfig(t *testing.T, name string, cfg *config.Config) {
	t.Helper()
	loop := func(what, hostport string) {
		host, _, err := net.SplitHostPort(hostport)
		if err != nil {
			t.Errorf("%s: %s %q: %v", name, what, hostport, err)
			return
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.IsLoopback() {
			t.Errorf("%s: %s %q is not a loopback address", name, what, hostport)
		}
	}
	for _, s := range cfg.Services {
		for _, l := range s.Listen {
			loop("service "+s.Name+" listen", l)
		}
	}
	for _, b := range cfg.Backends {
		for _, s := range b.Servers {
			loop("server "+b.Name+"/"+s.Name, s.Address)
		}
	}
	if len(cfg.VRRP) > 0 || len(cfg.Peers) > 0 || len(cfg.Time.Servers) > 0 || cfg.Node.Management.Interface != "" {
		t.Errorf("%s: VRRP instances, peers, time servers or a management link: they would send packets off the machine", name)
	}
}

// TestDemoStaysOnLoopback runs the daemon demo (make demo without root) and
// checks that it shows what it promises and that everything it touches is
// on loopback: in a namespace with only lo the backends still pass their
// checks and every request is answered, and no address in its configs or
// output is anything but loopback.
func TestDemoStaysOnLoopback(t *testing.T) {
	bin := buildBinaries(t)
	work := filepath.Join(t.TempDir(), "demo")
	argv := []string{"bash", "scripts/demo.sh"}
	if iso := isolated(t, argv...); iso != nil {
		argv = iso
		t.Logf("running the demo with only loopback: %s", strings.Join(iso[:2], " "))
	} else {
		t.Log("no network namespace available (unshare): running the demo on this machine's network; the address checks below still hold it to loopback")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "HALB_BIN="+bin, "HALB_DEMO_DIR="+work)
	raw, err := cmd.CombinedOutput()
	out := string(raw)
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}

	// What the demo shows, step by step.
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^server www/web1 +UP `),
		regexp.MustCompile(`GET 127\.0\.0\.1:\d+ → 200 OK from be1 via demo`),
		regexp.MustCompile(`GET 127\.0\.0\.1:\d+ → 200 OK from be2 via demo`),
		regexp.MustCompile(`GET 127\.0\.0\.1:\d+ → 200 OK from be[12]\n`), // the tcp service: no header added
		regexp.MustCompile(`broken\.yaml:6: vrrp\[0\]\.vrid: 300 is out of range`),
		regexp.MustCompile(`broken\.yaml rejected; the running config stays in force`),
		regexp.MustCompile(`applied: 2 change\(s\)\n  backends "www" changed: servers`),
		regexp.MustCompile(`200 OK from be3 via demo`),
		regexp.MustCompile(`(?m)^server www/web1 +DOWN .*connection refused`),
		regexp.MustCompile(`"type":"config\.applied"`),
		regexp.MustCompile(`halbd exited 0`),
		regexp.MustCompile(`"type":"config\.rejected"`),
		regexp.MustCompile(`"type":"health\.server_down"`),
		regexp.MustCompile(`"type":"daemon\.stopping"`),
		regexp.MustCompile(`msg="SIGHUP: reloading config"`),
	} {
		if !want.MatchString(out) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// After be1 died every request went to be2 or be3.
	if _, after, ok := strings.Cut(out, "be1 dies"); !ok {
		t.Error("demo output lacks the step that kills be1")
	} else if tail, _, _ := strings.Cut(after, "SIGHUP"); strings.Contains(tail, "from be1") || strings.Contains(tail, "no answer") || !strings.Contains(tail, "from be3") {
		t.Errorf("after be1 died, requests went to be1 or failed:\n%s", tail)
	}
	if strings.Contains(out, "no answer") || strings.Contains(out, "connect to 127.0.0.1") {
		t.Error("a request of the demo got no answer")
	}

	// Nothing but loopback, in the output, the configs and halbd's log.
	if bad := nonLoopback(out); len(bad) > 0 {
		t.Errorf("the demo's output names addresses that are not loopback: %v", bad)
	}
	files, _ := filepath.Glob(filepath.Join(work, "*.yaml"))
	if len(files) < 3 {
		t.Fatalf("the demo left %d configs in %s, want halb.yaml, broken.yaml, changed.yaml", len(files), work)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bad := nonLoopback(string(b)); len(bad) > 0 {
			t.Errorf("%s names addresses that are not loopback: %v", filepath.Base(f), bad)
		}
		if filepath.Base(f) == "broken.yaml" {
			continue // invalid on purpose
		}
		cfg, _, err := config.Load(f)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		loopbackOnlyConfig(t, filepath.Base(f), cfg)
	}
	if b, err := os.ReadFile(filepath.Join(work, "halbd.log")); err != nil {
		t.Error(err)
	} else if bad := nonLoopback(string(b)); len(bad) > 0 {
		t.Errorf("halbd's log names addresses that are not loopback: %v", bad)
	}
}
