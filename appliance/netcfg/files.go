package netcfg

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"halb/appliance/config"
)

// writeFile replaces path with data atomically (config.WriteFile: a
// temporary file, fsync, rename, fsync of the directory).
func writeFile(path string, data []byte) error {
	if err := config.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("netcfg: write %s: %w", path, err)
	}
	return nil
}

// leasePath is where the lease of ifname is kept.
func leasePath(stateDir, ifname string) string {
	return filepath.Join(stateDir, "dhcp-"+ifname+".lease")
}

func saveLease(stateDir, ifname string, l *dhcpLease) error {
	if stateDir == "" {
		return nil
	}
	p := leasePath(stateDir, ifname)
	if l == nil {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("netcfg: remove %s: %w", p, err)
		}
		return nil
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fmt.Errorf("netcfg: encode lease of %s: %w", ifname, err)
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fmt.Errorf("netcfg: state dir: %w", err)
	}
	return writeFile(p, append(b, '\n'))
}

// loadLease reads a saved lease; none (or an unreadable one, logged by the
// caller) is nil.
func loadLease(stateDir, ifname string) (*dhcpLease, error) {
	if stateDir == "" {
		return nil, nil
	}
	p := leasePath(stateDir, ifname)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netcfg: read %s: %w", p, err)
	}
	var l dhcpLease
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("netcfg: lease file %s: %w", p, err)
	}
	if !l.Address.IsValid() || !l.Address.Addr().Is4() || !l.Server.IsValid() {
		return nil, fmt.Errorf("netcfg: lease file %s: no address or server", p)
	}
	return &l, nil
}

// staticRecord is what netcfg added for a static configuration, kept in
// the state dir so a later change (even after a restart) removes exactly
// that and nothing else.
type staticRecord struct {
	Interface string       `json:"interface"`
	Address   netip.Prefix `json:"address,omitzero"` // set only when netcfg added it
	Gateway   netip.Addr   `json:"gateway,omitzero"` // set only when netcfg added the route
}

func staticPath(stateDir string) string { return filepath.Join(stateDir, "static.json") }

func saveStatic(stateDir string, r *staticRecord) error {
	if stateDir == "" {
		return nil
	}
	p := staticPath(stateDir)
	if r == nil || !r.Address.IsValid() && !r.Gateway.IsValid() {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("netcfg: remove %s: %w", p, err)
		}
		return nil
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fmt.Errorf("netcfg: state dir: %w", err)
	}
	return writeFile(p, append(b, '\n'))
}

func loadStatic(stateDir string) (*staticRecord, error) {
	if stateDir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(staticPath(stateDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("netcfg: read %s: %w", staticPath(stateDir), err)
	}
	var r staticRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("netcfg: %s: %w", staticPath(stateDir), err)
	}
	return &r, nil
}

// resolvConf renders /etc/resolv.conf.
func resolvConf(dns []netip.Addr, search []string) []byte {
	var b strings.Builder
	b.WriteString("# written by halbd (node.management); changes are overwritten\n")
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	for _, d := range dns {
		b.WriteString("nameserver " + d.String() + "\n")
	}
	return []byte(b.String())
}
