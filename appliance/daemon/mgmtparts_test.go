package daemon

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"halb/appliance/api"
	"halb/appliance/netcfg"
	"halb/internal/testutil"
)

// TestManageSystem: with node.manage_system, the daemon applies the static
// management address (in a namespace of the test's own), names the node
// after node.name and writes /etc/hosts with this node at that address and
// its peers; a change of the peers rewrites it. Without manage_system it
// writes nothing.
func TestManageSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a network namespace of its own")
	}
	ns := fmt.Sprintf("halb-ms-%04x", rand.Uint32()&0xffff)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "add", "mg0", "type", "veth", "peer", "name", "mg1").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v %s", err, out)
	}
	dir := t.TempDir()
	files := filepath.Join(dir, "etc")
	os.MkdirAll(files, 0o755)
	var mu sync.Mutex
	var names []string
	sys := netcfg.System{HostsPath: filepath.Join(files, "hosts"), HostnamePath: filepath.Join(files, "hostname"),
		ResolvPath: filepath.Join(files, "resolv.conf"), SetHostname: func(n string) error {
			mu.Lock()
			names = append(names, n)
			mu.Unlock()
			return nil
		}}
	cfg := func(peer string, manage bool) string {
		return fmt.Sprintf(`node:
  name: lbt
  manage_system: %v
  management: {interface: mg0, address: 10.9.0.5/24, dns: [10.9.0.53]}
peers: [{name: %s, address: 10.9.0.6}]
`, manage, peer)
	}
	td := startDaemonWith(t, dir, cfg("lbp", true), func(o *Options) { o.System, o.NetNS = sys, "/run/netns/"+ns })
	hosts := func() string { b, _ := os.ReadFile(sys.HostsPath); return string(b) }
	testutil.WaitFor(t, "/etc/hosts with this node and its peer", func() bool {
		h := hosts()
		return strings.Contains(h, "\n10.9.0.5\tlbt\n") && strings.Contains(h, "\n10.9.0.6\tlbp\n")
	})
	if b, _ := os.ReadFile(sys.HostnamePath); string(b) != "lbt\n" {
		t.Errorf("hostname file %q", b)
	}
	mu.Lock()
	if len(names) == 0 || names[0] != "lbt" {
		t.Errorf("sethostname calls %q", names)
	}
	mu.Unlock()
	testutil.WaitFor(t, "resolv.conf", func() bool {
		b, _ := os.ReadFile(sys.ResolvPath)
		return strings.Contains(string(b), "nameserver 10.9.0.53\n")
	})
	testutil.WaitFor(t, "the static address", func() bool {
		out, _ := exec.Command("ip", "-n", ns, "-4", "addr", "show", "mg0").Output()
		return strings.Contains(string(out), "10.9.0.5/24")
	})
	var st netcfg.Status
	if err := jsonOf(td.Status().Network, &st); err != nil || st.Mode != "static" {
		t.Errorf("network status %+v %v", st, err)
	}
	// The peer renamed: /etc/hosts follows the config.
	if _, err := td.ApplyFrom(api.SourceAPI, "", []byte(cfg("lbq", true))); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "/etc/hosts with the renamed peer", func() bool { return strings.Contains(hosts(), "\n10.9.0.6\tlbq\n") })
	// Without manage_system the files are left alone.
	os.Remove(sys.HostsPath)
	if _, err := td.ApplyFrom(api.SourceAPI, "", []byte(cfg("lbr", false))); err != nil {
		t.Fatal(err)
	}
	td.stop()
	if _, err := os.Stat(sys.HostsPath); err == nil {
		t.Errorf("/etc/hosts written without manage_system:\n%s", hosts())
	}
}

func jsonOf(raw []byte, v any) error { return json.Unmarshal(raw, v) }
