package netcfg

import (
	"net"
	"slices"
	"testing"
	"time"

	"halb/appliance/config"
)

// TestDHCPLabSetsLinkUp: a managed link that is administratively down (as
// every NIC is on the image, where no other network manager runs) is set up
// and gets its lease; a static link likewise gets its address.
func TestDHCPLabSetsLinkUp(t *testing.T) {
	t.Parallel() // own namespaces and dnsmasq
	l := newDHCPLab(t)
	run(t, "ip", "-n", l.cli, "link", "set", labIf, "down")
	mg, stop := l.manager(config.Management{Interface: labIf, DHCP: true}, Options{})
	bound(t, mg)
	h := l.handle()
	if lk, err := h.LinkByName(labIf); err != nil || lk.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("%s not up after DHCP: %v", labIf, err)
	}
	stop()
	run(t, "ip", "-n", l.cli, "link", "set", labIf, "down")
	mg, _ = l.manager(config.Management{Interface: labIf, Address: "10.77.0.9/24"}, Options{StateDir: t.TempDir()})
	waitLong(t, "the static address", 10*time.Second, func() bool { return slices.Contains(l.addrs(h), "10.77.0.9/24") })
	if lk, err := h.LinkByName(labIf); err != nil || lk.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("%s not up after static: %v (status %+v)", labIf, err, mg.Status())
	}
}
