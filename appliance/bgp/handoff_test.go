package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"halb/internal/testutil"
)

var (
	hoVIPs    = []netip.Prefix{netip.MustParsePrefix("192.168.10.100/32"), netip.MustParsePrefix("2001:db8::100/128")}
	hoTarget  = []netip.Addr{netip.MustParseAddr("10.1.0.2")}
	hoTargets = []netip.Addr{netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("10.1.0.3")}
)

// TestHandoffRuleset: what each phase loads.
func TestHandoffRuleset(t *testing.T) {
	reset := "table ip halb_bgp\ndelete table ip halb_bgp\n"
	reset6 := "table ip6 halb_bgp\ndelete table ip6 halb_bgp\n"
	for _, tc := range []struct {
		phase   HandoffPhase
		targets []netip.Addr
		has     []string
		hasNot  []string
	}{
		{HandoffOff, hoTarget, []string{reset, reset6}, []string{"table ip halb_bgp {", "dup"}},
		{HandoffTrack, hoTarget, []string{"elements = { 192.168.10.100/32 }", "ip daddr != @vips notrack", "ip saddr != @vips notrack", "ct state established accept"},
			[]string{"dup", "table ip6 halb_bgp {"}},
		{HandoffDrain, hoTarget, []string{"ip daddr @vips meta l4proto tcp ct state new counter dup to 10.1.0.2 drop"}, []string{"table ip6 halb_bgp {"}},
		{HandoffReturn, hoTargets, []string{"ip daddr @vips tcp flags & (syn|ack) != syn ct state new counter dup to jhash ip saddr . tcp sport mod 2 map { 0 : 10.1.0.2, 1 : 10.1.0.3 } drop"},
			[]string{"meta l4proto tcp ct state new"}},
		{HandoffDrain, nil, []string{reset, reset6}, []string{"dup"}},
	} {
		t.Run(fmt.Sprint(tc.phase, len(tc.targets)), func(t *testing.T) {
			rs := HandoffRuleset(tc.phase, hoVIPs, tc.targets)
			if !strings.HasPrefix(rs, reset) {
				t.Errorf("does not start by replacing the ip table:\n%s", rs)
			}
			for _, s := range tc.has {
				if !strings.Contains(rs, s) {
					t.Errorf("no %q in\n%s", s, rs)
				}
			}
			for _, s := range tc.hasNot {
				if strings.Contains(rs, s) {
					t.Errorf("%q in\n%s", s, rs)
				}
			}
		})
	}
	v6 := HandoffRuleset(HandoffDrain, hoVIPs, []netip.Addr{netip.MustParseAddr("2001:db8::2")})
	if !strings.Contains(v6, "ip6 daddr @vips meta l4proto tcp ct state new counter dup to 2001:db8::2 drop") || strings.Contains(v6, "table ip halb_bgp {") {
		t.Errorf("an IPv6 target hands on the IPv6 VIPs only:\n%s", v6)
	}
}

// TestHandoffNft loads every phase with the real nft in a fresh network
// namespace, and finds the rules there.
func TestHandoffNft(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("no nft program (scripts/deps.sh installs nftables)")
	}
	skip, err := testutil.InFreshNetns(func() (string, error) {
		ctx := context.Background()
		list := func() string {
			out, _ := exec.Command("nft", "list", "ruleset").CombinedOutput()
			return string(out)
		}
		for _, step := range []struct {
			phase   HandoffPhase
			targets []netip.Addr
			want    string
		}{
			{HandoffTrack, hoTarget, "ct state established accept"},
			{HandoffDrain, hoTarget, "dup to 10.1.0.2 drop"},
			{HandoffReturn, hoTargets, "dup to jhash ip saddr . tcp sport mod 2 map { 0 : 10.1.0.2, 1 : 10.1.0.3 } drop"},
			{HandoffDrain, []netip.Addr{netip.MustParseAddr("2001:db8::2")}, "dup to 2001:db8::2 drop"},
		} {
			if err := (NFT{}).Set(ctx, step.phase, hoVIPs, step.targets); err != nil {
				return "", err
			}
			if rs := list(); !strings.Contains(rs, step.want) {
				return "", fmt.Errorf("%s: no %q in the ruleset:\n%s", step.phase, step.want, rs)
			}
		}
		if err := (NFT{}).Set(ctx, HandoffOff, hoVIPs, hoTarget); err != nil {
			return "", err
		}
		if rs := list(); strings.Contains(rs, "halb_bgp") {
			return "", fmt.Errorf("off left\n%s", rs)
		}
		if err := (NFT{Nft: "/nonexistent/nft"}).Set(ctx, HandoffTrack, hoVIPs, hoTarget); err == nil {
			return "", fmt.Errorf("a missing nft program was not an error")
		}
		return "", nil
	})
	if skip != "" {
		t.Skip(skip)
	}
	if err != nil {
		t.Fatal(err)
	}
}

type fakeHandoff struct{ calls *[]string }

func (f fakeHandoff) Set(_ context.Context, phase HandoffPhase, vips []netip.Prefix, targets []netip.Addr) error {
	*f.calls = append(*f.calls, fmt.Sprintf("handoff %s %v %v", phase, vips, targets))
	return nil
}

// TestComponentHandoff: with bgp.drain_to, connections are tracked from
// the start (and for drain_time what this node did not open goes back);
// maintenance hands new connections on and keeps the VIP
// announced as it was while this node's own are open, withdraws it once
// none is left, and coming back hands back what it did not open for
// drain_time.
func TestComponentHandoff(t *testing.T) {
	var calls []string
	now := time.Date(2026, 12, 6, 1, 0, 0, 0, time.UTC)
	var evs []string
	c := New(slog.New(slog.DiscardHandler), nil, func() Engine { return &fakeEngine{calls: &calls, id: 1} },
		func(typ, msg string, _ any) { evs = append(evs, typ+": "+msg) })
	c.now = func() time.Time { return now }
	c.SetHandoff(fakeHandoff{&calls})
	open := 2
	c.openConns = func(vips []netip.Prefix) (int, error) {
		calls = append(calls, fmt.Sprintf("count %v", vips))
		return open, nil
	}
	c.Apply(parse(t, oneVIP+"  drain_to: [10.1.0.2]\n  drain_time: 10s\n"))
	c.SetServiceHealth("web", true)
	expect(t, "start: what this node did not open goes back for drain_time", step(t, c, &calls),
		"e1 start AS65001 10.0.0.1 port 0",
		"e1 add 10.0.0.254 AS65000 hold 9s ka 3s ttl 1",
		"handoff return [192.168.10.100/32] [10.1.0.2]",
		"e1 announce 192.168.10.100/32 med 0 prepend 0 communities []")
	now = now.Add(10 * time.Second)
	expect(t, "then connections are only tracked", step(t, c, &calls), "handoff track [192.168.10.100/32] [10.1.0.2]")
	evs = nil

	c.SetMaintenance(true, true)
	calls = nil
	next, err := c.reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "maintenance: hand off, VIP kept as it was", calls,
		"handoff drain [192.168.10.100/32] [10.1.0.2]",
		"count [192.168.10.100/32]")
	if want := now.Add(handoffPoll); !next.Equal(want) {
		t.Errorf("next = %v, want the next count at %v", next, want)
	}
	expect(t, "handoff event", evs, "bgp.vip_handoff: bgp: VIP 192.168.10.100/32 announced, new connections handed to other nodes "+
		"(healthy: web; maintenance: new connections handed to 10.1.0.2; 2 open connection(s) finishing (until 01:00:20))")
	if st := c.status(); st.VIPs[0].State != VIPHandoff || !st.VIPs[0].Announced {
		t.Errorf("status %+v", st.VIPs[0])
	}
	evs = nil
	open = 0
	now = now.Add(time.Second)
	expect(t, "the last connection closed: withdrawn", step(t, c, &calls), "count [192.168.10.100/32]", "e1 withdraw 192.168.10.100/32")
	expect(t, "withdrawn event", evs, "bgp.vip_withdrawn: bgp: VIP 192.168.10.100/32 withdrawn (maintenance: withdrawn after the drain (no connection left))")
	open = 5
	expect(t, "stays withdrawn and stops counting", step(t, c, &calls))

	c.SetMaintenance(false, true)
	calls = nil
	if next, err = c.reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	expect(t, "back: announced, handing back what it did not open", calls,
		"handoff return [192.168.10.100/32] [10.1.0.2]",
		"e1 announce 192.168.10.100/32 med 0 prepend 0 communities []")
	if want := now.Add(10 * time.Second); !next.Equal(want) {
		t.Errorf("next = %v, want the end of the return at %v", next, want)
	}
	now = now.Add(10 * time.Second)
	expect(t, "return over", step(t, c, &calls), "handoff track [192.168.10.100/32] [10.1.0.2]")

	// A drain that runs out of time withdraws with connections left.
	c.SetMaintenance(true, true)
	open = 3
	step(t, c, &calls)
	evs = nil
	now = now.Add(10 * time.Second)
	expect(t, "drain_time passed", step(t, c, &calls), "count [192.168.10.100/32]", "e1 withdraw 192.168.10.100/32")
	expect(t, "withdrawn with connections left", evs,
		"bgp.vip_withdrawn: bgp: VIP 192.168.10.100/32 withdrawn (maintenance: withdrawn after the drain (drain_time 10s passed; 3 connection(s) left))")
	if next, err := c.reconcile(context.Background()); err != nil || !next.IsZero() {
		t.Errorf("after the drain's end: next %v (%v), want no more polling", next, err)
	}

	c.SetMaintenance(false, true)
	step(t, c, &calls)
	c.Apply(parse(t, oneVIP))
	expect(t, "drain_to removed", step(t, c, &calls), "handoff off [192.168.10.100/32] []")
	c.stop()
}
