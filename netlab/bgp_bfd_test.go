package netlab

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"halb/appliance/api"
)

// TestBGPBFD: with BFD on the sessions (halb's bgp.neighbors[].bfd, FRR's
// bfdd, 300ms x 3 both sides), a frozen halbd (SIGSTOP: its BGP session
// stays open and silent) loses its path when BFD notices, well inside the
// 9s hold time that TestBGPActiveActive/frozen waits for.
func TestBGPBFD(t *testing.T) {
	concurrent(t)
	labSlot(t)
	b := newBGPLabOpts(t, bgpOpts{nodes: 2, mode: "active_active", www: ownServer, bfd: true})
	b.waitPaths(t, 2)
	if !WaitFor(10*time.Second, func() bool { return strings.Count(b.vtysh("show bfd peers brief"), " up ") == 2 }) {
		t.Fatalf("the router's BFD peers are not both up:\n%s", b.vtysh("show bfd peers"))
	}
	bfdUp := func(n *Node) bool {
		var bs api.BGPStatus
		st, err := n.API().Status(context.Background())
		return err == nil && json.Unmarshal(st.BGP, &bs) == nil && len(bs.Sessions) == 1 && bs.Sessions[0].BFD == "up"
	}
	if !WaitFor(10*time.Second, func() bool { return bfdUp(b.nodes[0]) && bfdUp(b.nodes[1]) }) {
		t.Fatalf("halb's status does not show BFD up on both nodes")
	}
	frozen := time.Now()
	if err := b.nodes[0].Freeze(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.nodes[0].Thaw() })
	gone := WaitFor(bgpHoldTime, func() bool { return slices.Equal(b.nextHops(), []string{"10.1.0.2"}) })
	took := time.Since(frozen)
	t.Logf("frozen lb1: path withdrawn after %s (BFD 300ms x 3; hold time %s)", took.Truncate(time.Millisecond), bgpHoldTime)
	if !gone {
		t.Fatalf("the router still has %v %s after lb1 froze\n%s", b.nextHops(), took, b.vtysh("show bfd peers"))
	}
	if took > bgpHoldTime/2 {
		t.Errorf("withdrawn after %s: the hold time (%s), not BFD, took the path", took, bgpHoldTime)
	}
}
