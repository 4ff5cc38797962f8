package netcfg

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"halb/appliance/config"
)

// System writes the host's own files: the host name and /etc/hosts
// (resolv.conf is the Manager's, from the DNS servers in force). halbd uses it only with node.manage_system (the
// image); in a lab or on a dev machine the host's files are not halbd's.
//
// A file that is a symbolic link is written where the link points (the
// image's root file system is read-only: its /etc/hosts, /etc/hostname and
// /etc/resolv.conf link into /var/lib/halb and /run/halb). Every file is
// written atomically (temporary file, fsync, rename) and only when its
// content changes.
type System struct {
	HostsPath, HostnamePath, ResolvPath string
	// SetHostname sets the kernel's host name; nil: sethostname(2).
	SetHostname func(name string) error
}

// DefaultSystem is the files of a Linux host.
func DefaultSystem() System {
	return System{HostsPath: "/etc/hosts", HostnamePath: "/etc/hostname", ResolvPath: "/etc/resolv.conf"}
}

// Marker is the first line of the files halbd writes.
const Marker = "# Written by halbd from halb.yaml (node.manage_system): edit the config, not this file."

// UnknownSelf is the address /etc/hosts names this node at while its
// management address is not known: Debian's convention.
var UnknownSelf = netip.AddrFrom4([4]byte{127, 0, 1, 1})

// Hosts is the /etc/hosts of node name at address self (UnknownSelf when
// invalid) with its peers.
func Hosts(name string, self netip.Addr, peers []config.Peer) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n", Marker)
	if !self.IsValid() {
		self = UnknownSelf
	}
	fmt.Fprintf(&b, "%s\t%s\n", self, name)
	for _, p := range peers {
		fmt.Fprintf(&b, "%s\t%s\n", p.Address, p.Name)
	}
	return b.Bytes()
}

// ApplyNames sets the host name and writes /etc/hosts and /etc/hostname.
// It reports whether anything changed.
func (s System) ApplyNames(name string, self netip.Addr, peers []config.Peer) (bool, error) {
	set := s.SetHostname
	if set == nil {
		set = func(n string) error { return unix.Sethostname([]byte(n)) }
	}
	changed := false
	cur, err := os.Hostname()
	if err != nil || cur != name {
		if err := set(name); err != nil {
			return false, fmt.Errorf("set host name %q: %w", name, err)
		}
		changed = true
	}
	var errs []error
	for _, f := range []struct {
		path string
		data []byte
	}{{s.HostnamePath, []byte(name + "\n")}, {s.HostsPath, Hosts(name, self, peers)}} {
		c, err := writeIfChanged(f.path, f.data)
		changed = changed || c
		errs = append(errs, err)
	}
	return changed, errors.Join(errs...)
}

// writeIfChanged writes data to path (where it points, if a symbolic link)
// atomically, unless it holds data already.
func writeIfChanged(path string, data []byte) (bool, error) {
	if path == "" {
		return false, nil
	}
	target := path
	if l, err := os.Readlink(path); err == nil {
		if !filepath.IsAbs(l) {
			l = filepath.Join(filepath.Dir(path), l)
		}
		target = l
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return false, fmt.Errorf("write %s: %w", path, err)
		}
	}
	old, err := os.ReadFile(target)
	if err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := config.WriteFile(target, data, 0o644); err != nil {
		return false, fmt.Errorf("write %s: %w", strings.TrimSuffix(path+" → "+target, " → "+path), err)
	}
	return true, nil
}
