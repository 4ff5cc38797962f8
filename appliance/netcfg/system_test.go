package netcfg

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"halb/appliance/config"
)

func testSystem(t *testing.T) (System, *[]string) {
	dir := t.TempDir()
	var set []string
	return System{HostsPath: filepath.Join(dir, "hosts"), HostnamePath: filepath.Join(dir, "hostname"),
		ResolvPath: filepath.Join(dir, "resolv.conf"), SetHostname: func(n string) error { set = append(set, n); return nil }}, &set
}

// TestApplyNames: both names resolve (this node at its management address,
// the peer at its address); a second run with the same input writes
// nothing.
func TestApplyNames(t *testing.T) {
	s, set := testSystem(t)
	self := netip.MustParseAddr("10.0.0.1")
	peers := []config.Peer{{Name: "lb2", Address: "10.0.0.2"}}
	changed, err := s.ApplyNames("lb1", self, peers)
	if err != nil || !changed {
		t.Fatalf("ApplyNames = %v, %v", changed, err)
	}
	hosts, _ := os.ReadFile(s.HostsPath)
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "\n10.0.0.1\tlb1\n", "\n10.0.0.2\tlb2\n", Marker} {
		if !strings.Contains(string(hosts), want) {
			t.Errorf("hosts lacks %q:\n%s", want, hosts)
		}
	}
	if b, _ := os.ReadFile(s.HostnamePath); string(b) != "lb1\n" {
		t.Errorf("hostname file %q", b)
	}
	if len(*set) != 1 || (*set)[0] != "lb1" {
		t.Errorf("sethostname calls %q", *set)
	}
	st, _ := os.Stat(s.HostsPath)
	if changed, err := s.ApplyNames("lb1", self, peers); err != nil {
		t.Fatal(err)
	} else if st2, _ := os.Stat(s.HostsPath); !os.SameFile(st, st2) {
		t.Errorf("unchanged hosts was rewritten (changed=%v)", changed)
	}
	// Unknown own address: Debian's 127.0.1.1.
	s.ApplyNames("lb1", netip.Addr{}, nil)
	if hosts, _ := os.ReadFile(s.HostsPath); !strings.Contains(string(hosts), "\n127.0.1.1\tlb1\n") || strings.Contains(string(hosts), "lb2") {
		t.Errorf("hosts without address or peers:\n%s", hosts)
	}
}

// TestWriteThroughLink: on the image /etc/hosts is a link into a writable
// directory; the file is written there and the link stays.
func TestWriteThroughLink(t *testing.T) {
	s, _ := testSystem(t)
	dir := filepath.Dir(s.HostsPath)
	if err := os.Symlink("var/hosts", s.HostsPath); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ApplyNames("lb1", netip.Addr{}, nil); err != nil {
		t.Fatal(err)
	}
	if l, err := os.Readlink(s.HostsPath); err != nil || l != "var/hosts" {
		t.Fatalf("link replaced: %q %v", l, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "var", "hosts")); err != nil || !strings.Contains(string(b), "lb1") {
		t.Fatalf("target: %q %v", b, err)
	}
}

// TestWriteResolv: the Manager writes resolv.conf only with ManageSystem and
// servers to name, where a link points (the image's /etc/resolv.conf), and
// leaves the link in place.
func TestWriteResolv(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "resolv.conf")
	if err := os.Symlink("var/resolv.conf", link); err != nil {
		t.Fatal(err)
	}
	m := &Manager{opts: Options{ManageSystem: true, ResolvConf: link}, log: slog.New(slog.DiscardHandler)}
	m.writeResolv(nil, nil)
	if _, err := os.Stat(filepath.Join(dir, "var", "resolv.conf")); err == nil {
		t.Fatal("resolv.conf written without servers")
	}
	m.writeResolv([]netip.Addr{netip.MustParseAddr("10.0.0.53"), netip.MustParseAddr("10.0.0.54")}, []string{"example.net"})
	b, _ := os.ReadFile(filepath.Join(dir, "var", "resolv.conf"))
	if !strings.HasSuffix(string(b), "\nsearch example.net\nnameserver 10.0.0.53\nnameserver 10.0.0.54\n") {
		t.Errorf("resolv.conf:\n%s", b)
	}
	if l, err := os.Readlink(link); err != nil || l != "var/resolv.conf" {
		t.Errorf("link replaced: %q %v", l, err)
	}
	m.opts.ManageSystem = false
	m.writeResolv([]netip.Addr{netip.MustParseAddr("10.0.0.99")}, nil)
	if b2, _ := os.ReadFile(filepath.Join(dir, "var", "resolv.conf")); string(b2) != string(b) {
		t.Errorf("written without ManageSystem:\n%s", b2)
	}
}
