package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// masterKilled is the master-killed scenario body, shared by the runs at
// other advert intervals.
func masterKilled(t *testing.T, c *Classic, row *Row) {
	bound := failoverBound(c)
	w, _ := measure(t, c, row,
		func() { c.LB[0].Kill() },
		func() bool { return c.LB[1].HoldsVIP(c.VIP) },
		bound+5*time.Second, 2*time.Second)
	checkOutage(t, row, w, bound)
	finish(t, c, row, "lb2")
}

// TestMasterKilledFastAdverts: the same failure at halb's default advert
// interval (200ms) and at 50ms, both flavors side by side.
func TestMasterKilledFastAdverts(t *testing.T) {
	for _, adv := range []time.Duration{200 * time.Millisecond, 50 * time.Millisecond} {
		t.Run(adv.String(), func(t *testing.T) {
			scenarioWith(t, "master-killed-advert-"+adv.String(), []string{NeedVRRP},
				ClassicOptions{AdvertInterval: adv}, masterKilled)
		})
	}
}

// TestPlannedHandover: the operator moves the VIP off lb1 on purpose
// (halbctl handover; for keepalived, stopping it gracefully). New
// connections must not fail.
func TestPlannedHandover(t *testing.T) {
	scenario(t, "planned-handover", []string{NeedVRRP}, func(t *testing.T, c *Classic, row *Row) {
		// lb2 takes over after its Skew_Time on the priority-0 advert.
		bound := MasterDownInterval(c.Opts.AdvertInterval, c.Opts.Priorities[1])/4 + 250*time.Millisecond
		w, _ := measure(t, c, row,
			func() {
				if err := c.LB[0].Handover(); err != nil {
					t.Fatal(err)
				}
			},
			func() bool { return slices.Equal(c.LiveVIPHolders(), []string{"lb2"}) && c.ARPOwner() == "lb2" },
			5*time.Second, time.Second)
		row.BoundMS = bound.Milliseconds()
		if w.Failed > 0 {
			row.Notef("%d requests failed during the handover (longest outage %s)", w.Failed, w.LongestOutage)
			if c.Opts.Flavor == FlavorHalb {
				t.Errorf("%d requests failed during a planned handover, want 0", w.Failed)
			}
		}
		if w.LongestOutage > bound {
			t.Errorf("outage %s exceeds %s", w.LongestOutage, bound)
		}
		row.VIPOwner, row.VIPHolders = c.ARPOwner(), c.VIPHolders()
	})
}

// TestMasterFrozen: lb1's daemons are stopped (SIGSTOP) for 2s, longer than
// the Master_Down_Interval at 200ms adverts, then continued. lb2 takes over;
// after the thaw the two must not stay MASTER together.
func TestMasterFrozen(t *testing.T) {
	scenarioWith(t, "master-frozen-2s", []string{NeedVRRP}, ClassicOptions{AdvertInterval: 200 * time.Millisecond},
		func(t *testing.T, c *Classic, row *Row) {
			bound := failoverBound(c)
			w, _ := measure(t, c, row,
				func() {
					if err := c.LB[0].Freeze(); err != nil {
						t.Fatal(err)
					}
					time.Sleep(2 * time.Second)
					if err := c.LB[0].Thaw(); err != nil {
						t.Fatal(err)
					}
				},
				// lb1 returns with the higher priority: one holder, lb1,
				// within a few adverts of the thaw.
				func() bool { return slices.Equal(c.VIPHolders(), []string{"lb1"}) },
				bound+5*time.Second, time.Second)
			checkOutage(t, row, w, bound)
			finish(t, c, row, "lb1")
		})
}

// TestInterop: one halb node and one keepalived node share the VIP: the
// VIP moves both ways within the bound when the master dies and returns.
func TestInterop(t *testing.T) {
	SkipUnlessRoot(t)
	for _, fl := range [][2]Flavor{{FlavorHalb, FlavorReference}, {FlavorReference, FlavorHalb}} {
		name := fmt.Sprintf("interop-%s-master", map[Flavor]string{FlavorHalb: "halb", FlavorReference: "keepalived"}[fl[0]])
		t.Run(name, func(t *testing.T) {
			row := &Row{Scenario: name, Flavor: string(fl[0]) + "+" + string(fl[1])}
			defer func() {
				row.Pass = !t.Failed()
				report.Add(row)
			}()
			l := New(t)
			c, err := NewClassic(l, ClassicOptions{Flavor: fl[0], NodeFlavors: fl})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			if err := c.WaitConverged(15 * time.Second); err != nil {
				t.Fatal(err)
			}
			bound := failoverBound(c)
			w, _ := measure(t, c, row,
				func() { c.LB[0].Kill() },
				func() bool { return c.LB[1].HoldsVIP(c.VIP) },
				bound+5*time.Second, 2*time.Second)
			checkOutage(t, row, w, bound)
			finish(t, c, row, "lb2")

			// The old master returns and preempts.
			if err := c.LB[0].Start(); err != nil {
				t.Fatal(err)
			}
			if !WaitFor(MasterDownInterval(c.Opts.AdvertInterval, c.Opts.Priorities[0])+5*time.Second,
				func() bool { return slices.Equal(c.VIPHolders(), []string{"lb1"}) }) {
				t.Errorf("after lb1 returned: VIP holders %v, want [lb1]", c.VIPHolders())
			}
			if !WaitFor(5*time.Second, func() bool { return c.ARPOwner() == "lb1" }) {
				t.Errorf("after failback the client's ARP entry points to %s", c.ARPOwner())
			}
		})
	}
}

// TestMasterKilledIPv6: the VIP is an IPv6 address (VRRPv3 over IPv6 from
// link-local sources, unsolicited neighbor advertisements).
func TestMasterKilledIPv6(t *testing.T) {
	scenarioWith(t, "master-killed-ipv6", []string{NeedVRRP}, ClassicOptions{IPv6: true}, masterKilled)
}

// TestMasterKilledUnicast: adverts go to the peer's address, not multicast.
func TestMasterKilledUnicast(t *testing.T) {
	scenarioWith(t, "master-killed-unicast", []string{NeedVRRP}, ClassicOptions{Unicast: true}, masterKilled)
}

// TestDualMaster: two VIPs, each node MASTER of one. lb1 dies: lb2 holds
// both, and the clients of lb2's own VIP never notice; lb1 returns: each
// node is MASTER of its own VIP again.
func TestDualMaster(t *testing.T) {
	scenarioWith(t, "dual-master", []string{NeedVRRP}, ClassicOptions{DualMaster: true}, func(t *testing.T, c *Classic, row *Row) {
		vip2 := netip.MustParseAddr(ClassicVIP2)
		if !WaitFor(10*time.Second, func() bool { return slices.Equal(c.HoldersOf(vip2), []string{"lb2"}) }) {
			t.Fatalf("VIP2 holders %v, want [lb2]", c.HoldersOf(vip2))
		}
		other := StartProbe(context.Background(), ProbeConfig{URL: "http://" + ClassicVIP2 + "/", Rate: 200, Timeout: time.Second, Dial: c.Client.Dial})
		bound := failoverBound(c)
		w, _ := measure(t, c, row,
			func() { c.LB[0].Kill() },
			func() bool { return c.LB[1].HoldsVIP(c.VIP) },
			bound+5*time.Second, 2*time.Second)
		checkOutage(t, row, w, bound)
		if r := other.Stop(); r.Failed > 0 {
			t.Errorf("lb2's own VIP lost %d of %d requests while lb1 died", r.Failed, r.Sent)
		}
		if !slices.Equal(c.LiveVIPHolders(), []string{"lb2"}) || !slices.Contains(c.HoldersOf(vip2), "lb2") {
			t.Errorf("after lb1 died: holders %v / %v, want lb2 holding both", c.VIPHolders(), c.HoldersOf(vip2))
		}
		if err := c.LB[0].Start(); err != nil {
			t.Fatal(err)
		}
		if !WaitFor(MasterDownInterval(c.Opts.AdvertInterval, c.Opts.Priorities[0])+5*time.Second, func() bool {
			return slices.Equal(c.VIPHolders(), []string{"lb1"}) && slices.Equal(c.HoldersOf(vip2), []string{"lb2"})
		}) {
			t.Errorf("after lb1 returned: holders %v / %v, want lb1 / lb2", c.VIPHolders(), c.HoldersOf(vip2))
		}
		finish(t, c, row, "lb1")
	})
}

// TestMaintenance (halb): maintenance on lb1 moves the VIP to lb2 without a
// failed request, survives a restart of lb1's halbd, and off brings it back.
func TestMaintenance(t *testing.T) {
	SkipUnlessRoot(t)
	row := &Row{Scenario: "maintenance", Flavor: string(FlavorHalb)}
	defer func() {
		row.Pass = !t.Failed()
		report.Add(row)
	}()
	l := New(t)
	c, err := NewClassic(l, ClassicOptions{Flavor: FlavorHalb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.WaitConverged(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	ctl := c.LB[0].API()
	defer ctl.Close()
	ctx := context.Background()
	w, _ := measure(t, c, row,
		func() {
			if err := ctl.SetMaintenance(ctx, true); err != nil {
				t.Fatal(err)
			}
		},
		func() bool { return slices.Equal(c.VIPHolders(), []string{"lb2"}) && c.ARPOwner() == "lb2" },
		5*time.Second, time.Second)
	if w.Failed > 0 {
		t.Errorf("%d requests failed entering maintenance, want 0", w.Failed)
	}
	// A restart keeps maintenance: lb1 must not take the VIP back.
	c.LB[0].Kill()
	if err := c.LB[0].Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(MasterDownInterval(c.Opts.AdvertInterval, c.Opts.Priorities[0]) + 2*time.Second)
	for time.Now().Before(deadline) {
		if c.LB[0].HoldsVIP(c.VIP) {
			t.Fatal("lb1 took the VIP after a restart in maintenance")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if on, err := ctl.Maintenance(ctx); err != nil || !on {
		t.Fatalf("maintenance after restart: %v %v, want on", on, err)
	}
	if err := ctl.SetMaintenance(ctx, false); err != nil {
		t.Fatal(err)
	}
	if !WaitFor(MasterDownInterval(c.Opts.AdvertInterval, c.Opts.Priorities[0])+5*time.Second,
		func() bool { return slices.Equal(c.VIPHolders(), []string{"lb1"}) }) {
		t.Errorf("maintenance off: holders %v, want [lb1]", c.VIPHolders())
	}
	finish(t, c, row, "lb1")
}
