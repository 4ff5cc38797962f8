// Package netcfg is halbd's door to the node's network configuration: the
// list of interfaces the console shows, and (with its issue) the
// management link, DHCP, the hostname and /etc/hosts.
package netcfg

import (
	"fmt"
	"net"
	"sort"

	"github.com/vishvananda/netlink"
)

// Link is one network interface as the console shows it.
type Link struct {
	Name      string
	Index     int
	Kind      string // device, bridge, vlan, bond, veth, dummy, loopback, macvlan, ...
	MAC       string
	MTU       int
	Up        bool     // administratively up
	Carrier   bool     // a link is detected (operational state up)
	Addresses []string // CIDR, in the kernel's order
}

// Links lists the node's interfaces, by index.
func Links() ([]Link, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netcfg: list links: %w", err)
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		a := l.Attrs()
		kind := l.Type()
		switch {
		case a.Flags&net.FlagLoopback != 0:
			kind = "loopback"
		case kind == "device":
		}
		lk := Link{Name: a.Name, Index: a.Index, Kind: kind, MTU: a.MTU,
			Up: a.Flags&net.FlagUp != 0, Carrier: a.OperState == netlink.OperUp || (a.OperState == netlink.OperUnknown && a.Flags&net.FlagRunning != 0)}
		if len(a.HardwareAddr) > 0 {
			lk.MAC = a.HardwareAddr.String()
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("netcfg: addresses of %s: %w", a.Name, err)
		}
		for _, ad := range addrs {
			if ad.IP.IsLinkLocalUnicast() {
				continue
			}
			lk.Addresses = append(lk.Addresses, ad.IPNet.String())
		}
		out = append(out, lk)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}
