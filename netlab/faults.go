package netlab

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// Nft loads an nftables ruleset (nft -f syntax) inside the host.
func (h *Host) Nft(ruleset string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := h.Do(cmd.Run); err != nil {
		return fmt.Errorf("netlab: %s: nft: %w: %s\nruleset:\n%s", h.Name, err, out.String(), ruleset)
	}
	return nil
}

// addrs lists every address of every interface of the host.
func (h *Host) addrs() []netip.Addr {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []netip.Addr
	for _, i := range h.ifaces {
		for _, p := range i.Addrs {
			out = append(out, p.Addr())
		}
	}
	return out
}

func partitionTable(peer *Host) string {
	return "netlab_part_" + strings.ReplaceAll(peer.Name, "-", "_")
}

// Partition cuts a and b off from each other (both directions, every
// address of each; other hosts still reach both), with nftables rules
// inside both hosts. The returned function heals it.
func Partition(a, b *Host) (heal func() error, err error) {
	for _, pair := range [][2]*Host{{a, b}, {b, a}} {
		if err := pair[0].dropFrom(pair[1]); err != nil {
			return nil, err
		}
	}
	return func() error {
		for _, pair := range [][2]*Host{{a, b}, {b, a}} {
			if err := pair[0].Nft("delete table inet " + partitionTable(pair[1]) + "\n"); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// dropFrom drops every packet from and to peer's addresses.
func (h *Host) dropFrom(peer *Host) error {
	var v4, v6 []string
	for _, a := range peer.addrs() {
		if a.Is4() {
			v4 = append(v4, a.String())
		} else {
			v6 = append(v6, a.String())
		}
	}
	var rules strings.Builder
	t := partitionTable(peer)
	fmt.Fprintf(&rules, "table inet %s {\n", t)
	for _, hook := range []struct{ chain, hook, dir string }{{"in", "input", "saddr"}, {"out", "output", "daddr"}} {
		fmt.Fprintf(&rules, "  chain %s {\n    type filter hook %s priority -300; policy accept;\n", hook.chain, hook.hook)
		if len(v4) > 0 {
			fmt.Fprintf(&rules, "    ip %s { %s } drop\n", hook.dir, strings.Join(v4, ", "))
		}
		if len(v6) > 0 {
			fmt.Fprintf(&rules, "    ip6 %s { %s } drop\n", hook.dir, strings.Join(v6, ", "))
		}
		rules.WriteString("  }\n")
	}
	rules.WriteString("}\n")
	return h.Nft(rules.String())
}

// Loss drops the given percentage of the host's packets, in and out, at
// random (nftables numgen: tc netem is not available on these machines).
// The returned function ends it.
func (h *Host) Loss(percent int) (restore func() error, err error) {
	if percent < 0 || percent > 100 {
		return nil, fmt.Errorf("netlab: loss %d%% out of range", percent)
	}
	match := fmt.Sprintf("numgen random mod 100 < %d drop", percent)
	if percent == 100 {
		match = "drop"
	}
	rules := fmt.Sprintf(`table inet netlab_loss {
  chain in { type filter hook input priority -300; policy accept; %[1]s; }
  chain out { type filter hook output priority -300; policy accept; %[1]s; }
}
`, match)
	if err := h.Nft(rules); err != nil {
		return nil, err
	}
	return func() error { return h.Nft("delete table inet netlab_loss\n") }, nil
}
