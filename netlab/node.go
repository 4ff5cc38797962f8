package netlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"halb/appliance/api"
	"halb/appliance/config"
)

// Flavor says what a load-balancer node of the lab runs.
type Flavor string

const (
	// FlavorHalb runs bin/halbd.
	FlavorHalb Flavor = "halb"
	// FlavorReference runs Debian's keepalived and HAProxy, configured
	// from the same halb config.
	FlavorReference Flavor = "reference"
)

// Flavors lists both, reference first: it is the yardstick.
var Flavors = []Flavor{FlavorReference, FlavorHalb}

// HalbdPath is the halbd binary halb nodes run. Tests build it (see
// BuildHalbd); cmd/netlab uses bin/halbd.
var HalbdPath = "bin/halbd"

// Features a scenario may need from a node.
const (
	NeedVRRP   = "vrrp"
	NeedProxy  = "proxy"
	NeedHealth = "health"
)

// HalbLacks says why halbd cannot yet run a scenario that needs feature, or
// "" when it can. Scenarios skip with this reason, never fake.
// Every feature the scenarios need today exists; later issues add theirs
// here until they land.
func HalbLacks(feature string) string {
	return ""
}

// Node is a load balancer in the lab: a host running halbd, or keepalived
// and HAProxy.
type Node struct {
	Host   *Host
	Flavor Flavor
	Config *config.Config
	Raw    []byte
	Dir    string

	procs []*Process
}

// StartNode writes the node's config and starts its daemons on host h.
func (l *Lab) StartNode(h *Host, flavor Flavor, raw []byte) (*Node, error) {
	cfg, err := config.Parse("halb.yaml", raw)
	if err != nil {
		return nil, fmt.Errorf("netlab: node %s: %w", h.Name, err)
	}
	n, err := l.newNode(h, flavor)
	if err != nil {
		return nil, err
	}
	n.Config, n.Raw = cfg, raw
	switch flavor {
	case FlavorReference:
		p := RefPaths{Dir: n.Dir}
		kc, err := KeepalivedConfig(cfg, p)
		if err != nil {
			return nil, fmt.Errorf("netlab: node %s: %w", h.Name, err)
		}
		hc, err := HAProxyConfig(cfg, p)
		if err != nil {
			return nil, fmt.Errorf("netlab: node %s: %w", h.Name, err)
		}
		if err := os.WriteFile(p.KeepalivedConf(), kc, 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p.HAProxyCfg(), hc, 0o644); err != nil {
			return nil, err
		}
		for path, m := range HAProxyMaps(cfg, p) {
			if err := os.WriteFile(path, m, 0o644); err != nil {
				return nil, err
			}
		}
	case FlavorHalb:
		if err := os.WriteFile(filepath.Join(n.Dir, "halb.yaml"), raw, 0o640); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("netlab: unknown flavor %q", flavor)
	}
	return n, n.Start()
}

// newNode makes the node's directory and lets its listeners bind the VIP
// before the node holds it, as both HAProxy setups and halb (IP_FREEBIND)
// do.
func (l *Lab) newNode(h *Host, flavor Flavor) (*Node, error) {
	n := &Node{Host: h, Flavor: flavor, Dir: filepath.Join(l.Dir, h.Name)}
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return nil, err
	}
	for _, k := range []string{"net/ipv4/ip_nonlocal_bind", "net/ipv6/ip_nonlocal_bind"} {
		if err := h.Sysctl(k, "1"); err != nil {
			return nil, fmt.Errorf("netlab: node %s: sysctl %s: %w", h.Name, k, err)
		}
	}
	return n, nil
}

// StartReferenceFiles starts keepalived and HAProxy on h with an operator's
// own keepalived.conf and haproxy.cfg, as they are (not rendered from a
// halb config: Config stays nil). The import scenario runs them beside
// their import.
func (l *Lab) StartReferenceFiles(h *Host, keepalivedConf, haproxyCfg []byte) (*Node, error) {
	n, err := l.newNode(h, FlavorReference)
	if err != nil {
		return nil, err
	}
	p := RefPaths{Dir: n.Dir}
	if err := os.WriteFile(p.KeepalivedConf(), keepalivedConf, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.HAProxyCfg(), haproxyCfg, 0o644); err != nil {
		return nil, err
	}
	return n, n.Start()
}

// Start starts the node's daemons (again, after Kill).
func (n *Node) Start() error {
	var ps []*Process
	start := func(name string, argv ...string) error {
		p, err := n.Host.Start(name, argv...)
		if err == nil {
			ps = append(ps, p)
		}
		return err
	}
	var err error
	switch n.Flavor {
	case FlavorReference:
		p := RefPaths{Dir: n.Dir}
		err = errors.Join(
			start("keepalived", append([]string{"keepalived"}, KeepalivedArgs(p)...)...),
			start("haproxy", append([]string{"haproxy"}, HAProxyArgs(p)...)...),
		)
	case FlavorHalb:
		err = start("halbd", HalbdPath,
			"-config", filepath.Join(n.Dir, "halb.yaml"),
			"-socket", filepath.Join(n.Dir, "halb.sock"),
			"-state-dir", filepath.Join(n.Dir, "state"))
	}
	n.procs = ps
	return err
}

// Kill SIGKILLs every daemon of the node (a crash: nothing is cleaned up).
func (n *Node) Kill() error {
	var errs []error
	for _, p := range n.procs {
		if p.Running() {
			errs = append(errs, p.Kill())
		}
	}
	return errors.Join(errs...)
}

// Handover gives up MASTER the way each flavor's operator would: halbctl
// handover (the API) for halb; for keepalived, which has no such command,
// a graceful stop of keepalived (SIGTERM: it sends priority 0), leaving
// HAProxy running.
func (n *Node) Handover() error {
	switch n.Flavor {
	case FlavorHalb:
		c := n.API()
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.Handover(ctx)
	default:
		for _, p := range n.procs {
			if p.Name == "keepalived" {
				return p.Terminate(5 * time.Second)
			}
		}
		return errors.New("netlab: no keepalived to stop")
	}
}

// API returns a client of the node's halbd (halb flavor).
func (n *Node) API() *api.Client { return api.NewClient(filepath.Join(n.Dir, "halb.sock")) }

// Freeze SIGSTOPs the node's daemons; Thaw SIGCONTs them.
func (n *Node) Freeze() error {
	var errs []error
	for _, p := range n.procs {
		errs = append(errs, p.Stop())
	}
	return errors.Join(errs...)
}

// Thaw resumes the node's daemons after Freeze.
func (n *Node) Thaw() error {
	var errs []error
	for _, p := range n.procs {
		errs = append(errs, p.Cont())
	}
	return errors.Join(errs...)
}

// Running reports whether every daemon of the node is alive.
func (n *Node) Running() bool {
	for _, p := range n.procs {
		if !p.Running() {
			return false
		}
	}
	return len(n.procs) > 0
}

// Processes returns the node's daemons.
func (n *Node) Processes() []*Process { return n.procs }

// HoldsVIP reports whether the VIP is configured on the node's host.
func (n *Node) HoldsVIP(vip netip.Addr) bool { return n.Host.HasAddr(vip) }

// WaitFor polls cond every 20ms until it holds or timeout passes.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
