package netcfg

import "time"

// Status is the management network as halbd sees it: the contract between
// netcfg, the daemon's status API, halbctl and the console.
type Status struct {
	// Mode is "dhcp", "static", "first-boot" (no node.management yet and
	// manage_system on: DHCP on every wired interface) or "unmanaged" (the
	// operating system's own setup is left alone).
	Mode string `json:"mode"`
	// Interfaces are the managed links: one, or every wired link at first
	// boot.
	Interfaces []InterfaceStatus `json:"interfaces,omitempty"`
	// Gateway is the default route netcfg installed (static or from a
	// lease); empty when none.
	Gateway string `json:"gateway,omitempty"`
	// DNS are the name servers in force (static or from a lease).
	DNS []string `json:"dns,omitempty"`
	// NTP are the time servers a lease offered (DHCP option 42).
	NTP []string `json:"ntp,omitempty"`
	// Error is the last failure to apply the settings; empty when none.
	Error string `json:"error,omitempty"`
}

// InterfaceStatus is one managed link.
type InterfaceStatus struct {
	Name    string `json:"name"`
	MAC     string `json:"mac,omitempty"`
	Carrier bool   `json:"carrier"`
	// Addresses are every address on the link (CIDR), including those
	// netcfg did not add (VIPs, the operator's own).
	Addresses []string `json:"addresses,omitempty"`
	// Managed are the addresses netcfg added and is responsible for.
	Managed []string `json:"managed,omitempty"`
	// Lease is the DHCP client's state; nil for a static link.
	Lease *Lease `json:"lease,omitempty"`
}

// Lease is a DHCP client's state and the lease it holds.
type Lease struct {
	// State is the RFC 2131 client state: INIT, SELECTING, REQUESTING,
	// BOUND, RENEWING, REBINDING, INIT-REBOOT or REBOOTING.
	State    string    `json:"state"`
	Address  string    `json:"address,omitempty"` // CIDR
	Server   string    `json:"server,omitempty"`  // server identifier (option 54)
	Router   string    `json:"router,omitempty"`
	DNS      []string  `json:"dns,omitempty"`
	NTP      []string  `json:"ntp,omitempty"`
	Domain   string    `json:"domain,omitempty"`
	Obtained time.Time `json:"obtained,omitzero"`
	T1       time.Time `json:"t1,omitzero"`
	T2       time.Time `json:"t2,omitzero"`
	Expiry   time.Time `json:"expiry,omitzero"`
	// Renewals counts leases extended by RENEWING or REBINDING since the
	// lease was obtained.
	Renewals int `json:"renewals"`
}
