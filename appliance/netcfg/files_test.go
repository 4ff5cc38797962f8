package netcfg

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"halb/appliance/config"
)

func TestLeaseFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l := &dhcpLease{Address: netip.MustParsePrefix("10.9.0.50/24"), Server: tServer, Router: tServer,
		DNS: []netip.Addr{netip.MustParseAddr("10.9.0.53")}, Domain: "lab.example",
		Obtained: t0, T1: t0.Add(time.Minute), T2: t0.Add(2 * time.Minute), Expiry: t0.Add(3 * time.Minute), Renewals: 4}
	if err := saveLease(dir, "eth0", l); err != nil {
		t.Fatal(err)
	}
	got, err := loadLease(dir, "eth0")
	if err != nil || got.Address != l.Address || got.Server != l.Server || !got.Expiry.Equal(l.Expiry) || got.Renewals != 4 || got.Domain != l.Domain {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if err := saveLease(dir, "eth0", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := loadLease(dir, "eth0"); got != nil || err != nil {
		t.Fatalf("after delete: %+v %v", got, err)
	}
	os.WriteFile(leasePath(dir, "eth1"), []byte("{not json"), 0o644)
	if _, err := loadLease(dir, "eth1"); err == nil || !strings.Contains(err.Error(), "dhcp-eth1.lease") {
		t.Fatalf("corrupt lease file: %v", err)
	}
	os.WriteFile(leasePath(dir, "eth2"), []byte(`{"address":"10.0.0.1/24"}`), 0o644)
	if _, err := loadLease(dir, "eth2"); err == nil {
		t.Fatal("lease file without server accepted")
	}
}

func TestWriteFileLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "resolv.conf")
	for i := range 3 {
		if err := writeFile(p, resolvConf([]netip.Addr{netip.MustParseAddr("10.0.0.53")}, []string{"a.test"})); err != nil {
			t.Fatal(i, err)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("files left: %v", ents)
	}
	b, _ := os.ReadFile(p)
	if !strings.HasSuffix(string(b), "search a.test\nnameserver 10.0.0.53\n") {
		t.Fatalf("resolv.conf:\n%s", b)
	}
	if err := writeFile(filepath.Join(dir, "missing", "x"), nil); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func TestCheckManagement(t *testing.T) {
	for _, c := range []struct {
		m    config.Management
		want string
	}{
		{config.Management{DHCP: true}, "interface is required"},
		{config.Management{Interface: "eth0", DHCP: true, Address: "10.0.0.1/24"}, "exclude"},
		{config.Management{Interface: "eth0", Address: "10.0.0.1"}, "management.address"},
		{config.Management{Interface: "eth0", Address: "10.0.0.1/24", Gateway: "x"}, "management.gateway"},
		{config.Management{Interface: "eth0", Address: "10.0.0.1/24", DNS: []string{"1.1.1.1", "y"}}, "management.dns[1]"},
	} {
		if err := check(c.m); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.m, err, c.want)
		}
	}
	if err := check(config.Management{}); err != nil {
		t.Error(err)
	}
}
