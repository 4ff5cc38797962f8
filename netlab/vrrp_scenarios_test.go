package netlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"halb/appliance/vrrp"
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

// TestMasterKilledAdvert200ms: the same failure at halb's default advert
// interval, 200ms.
func TestMasterKilledAdvert200ms(t *testing.T) {
	concurrent(t)
	scenarioWith(t, "master-killed-advert-200ms", []string{NeedVRRP},
		ClassicOptions{AdvertInterval: 200 * time.Millisecond}, masterKilled)
}

// TestMasterKilledAdvert50ms: the same failure at 50ms adverts. Serial: a
// backup takes over after 3 missed adverts (and its skew), 180ms, so a
// busy machine could delay an advert enough to matter.
func TestMasterKilledAdvert50ms(t *testing.T) {
	scenarioWith(t, "master-killed-advert-50ms", []string{NeedVRRP},
		ClassicOptions{AdvertInterval: 50 * time.Millisecond}, masterKilled)
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
		row.SetBound(bound, w.LongestOutage <= bound)
		if w.Failed > 0 {
			row.Notef("%d requests failed during the handover (longest outage %s): %s", w.Failed, w.LongestOutage, firstError(w))
		}
		if c.Opts.Flavor == FlavorHalb {
			onlyAcrossTheSwitch(t, c, w)
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
	concurrent(t)
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

// TestBackupFrozen: lb2, the BACKUP, is stopped (SIGSTOP) for 1s, longer
// than the Master_Down_Interval at 200ms adverts, while lb1 advertises on;
// then continued; four times. lb1's adverts wait in lb2's socket: lb2 must
// not act as MASTER even for a moment (no advert of its own with a
// priority, which also announces the VIP and pulls clients to it) and the
// client loses no request. The client's host listens to the adverts on the
// front LAN. (Whether a thawed daemon's timer or its socket is served first
// is up to its scheduler: one freeze without the catching up showed the
// takeover in one run of three here.)
func TestBackupFrozen(t *testing.T) {
	concurrent(t)
	scenarioWith(t, "backup-frozen-4x1s", []string{NeedVRRP}, ClassicOptions{AdvertInterval: 200 * time.Millisecond},
		func(t *testing.T, c *Classic, row *Row) {
			ads := listenAdverts(t, c.Client)
			w, t0 := measure(t, c, row,
				func() {
					for range 4 {
						if err := c.LB[1].Freeze(); err != nil {
							t.Fatal(err)
						}
						time.Sleep(time.Second)
						if err := c.LB[1].Thaw(); err != nil {
							t.Fatal(err)
						}
						time.Sleep(300 * time.Millisecond)
					}
				},
				nil, time.Second, 0)
			lb1, lb2 := netip.MustParseAddr("192.168.10.1"), netip.MustParseAddr("192.168.10.2")
			fromLB1, asMaster := 0, 0
			for _, a := range ads.since(t0) {
				switch {
				case a.src == lb1 && a.prio > 0:
					fromLB1++
				case a.src == lb2 && a.prio > 0:
					asMaster++
				}
			}
			// 6.2s at 200ms: 31 adverts of lb1's.
			if fromLB1 < 15 {
				t.Fatalf("control: %d adverts of lb1 heard on the front LAN in 6.2s, want about 31", fromLB1)
			}
			row.SetBound(0, w.Failed == 0)
			row.Notef("after its thaws lb2 sent %d adverts as MASTER; %d of %d requests failed (longest outage %s)",
				asMaster, w.Failed, w.Sent, w.LongestOutage)
			if c.Opts.Flavor == FlavorHalb {
				if asMaster > 0 {
					t.Errorf("lb2 advertised as MASTER %d times after its freezes, with lb1's adverts in its socket", asMaster)
				}
				if w.Failed > 0 {
					t.Errorf("%d requests failed around lb2's freeze: %s", w.Failed, firstError(w))
				}
			}
			finish(t, c, row, "lb1")
		})
}

// advertLog is the VRRP adverts a host heard, in order.
type advertLog struct {
	mu  sync.Mutex
	ads []heardAdvert
}

type heardAdvert struct {
	at   time.Time
	src  netip.Addr
	prio int
}

func (l *advertLog) since(t0 time.Time) []heardAdvert {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []heardAdvert
	for _, a := range l.ads {
		if !a.at.Before(t0) {
			out = append(out, a)
		}
	}
	return out
}

// listenAdverts records the IPv4 VRRP adverts h's eth0 receives (it joins
// 224.0.0.18) until the test ends.
func listenAdverts(t *testing.T, h *Host) *advertLog {
	t.Helper()
	var c net.PacketConn
	if err := h.Do(func() error {
		var err error
		if c, err = net.ListenPacket("ip4:112", "0.0.0.0"); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		return ipv4.NewPacketConn(c).JoinGroup(ifi, &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)})
	}); err != nil {
		if c != nil {
			c.Close()
		}
		t.Fatal(err)
	}
	l := &advertLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf) // the payload: the IPv4 header is stripped
			if err != nil {
				return
			}
			ip, _ := from.(*net.IPAddr)
			if n < 4 || ip == nil {
				continue
			}
			src, _ := netip.AddrFromSlice(ip.IP)
			l.mu.Lock()
			l.ads = append(l.ads, heardAdvert{at: time.Now(), src: src.Unmap(), prio: int(buf[2])})
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return l
}

// TestInterop: one halb node and one keepalived node share the VIP: the
// VIP moves both ways within the bound when the master dies and returns,
// with VRRPv3 multicast, VRRPv3 unicast and VRRPv2.
func TestInterop(t *testing.T) {
	concurrent(t)
	SkipUnlessRoot(t)
	variants := []struct {
		name string
		opts ClassicOptions
	}{
		{"", ClassicOptions{}},
		{"-unicast", ClassicOptions{Unicast: true}},
		{"-v2", ClassicOptions{Version: 2}},
	}
	for _, v := range variants {
		for _, fl := range [][2]Flavor{{FlavorHalb, FlavorReference}, {FlavorReference, FlavorHalb}} {
			name := fmt.Sprintf("interop-%s-master%s", map[Flavor]string{FlavorHalb: "halb", FlavorReference: "keepalived"}[fl[0]], v.name)
			t.Run(name, func(t *testing.T) {
				labSlot(t)
				row := reportRow(t, name, string(fl[0])+"+"+string(fl[1]))
				l := New(t)
				o := v.opts
				o.Flavor, o.NodeFlavors = fl[0], fl
				c, err := NewClassic(l, o)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(c.Close)
				if err := c.WaitConverged(15 * time.Second); err != nil {
					t.Fatal(err)
				}
				masterKilled(t, c, row)

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
}

// TestStartupNoDualMaster: both nodes start together; the VIP must never be
// held by both (sampled every 10ms until converged and 2s more).
func TestStartupNoDualMaster(t *testing.T) {
	SkipUnlessRoot(t)
	for _, fl := range Flavors {
		t.Run(string(fl), func(t *testing.T) {
			row := reportRow(t, "startup", string(fl))
			l := New(t)
			c, err := NewClassic(l, ClassicOptions{Flavor: fl})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			start := time.Now()
			both, converged := 0, time.Time{}
			for time.Since(start) < 15*time.Second {
				h := c.VIPHolders()
				if len(h) == 2 {
					both++
				}
				if converged.IsZero() && slices.Equal(h, []string{"lb1"}) {
					converged = time.Now()
				}
				if !converged.IsZero() && time.Since(converged) > 2*time.Second {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if converged.IsZero() {
				t.Fatalf("never converged: holders %v", c.VIPHolders())
			}
			row.VIPHolders, row.VIPOwner = c.VIPHolders(), c.ARPOwner()
			row.Notef("lb1 MASTER %s after start; both nodes held the VIP in %d samples (10ms apart)",
				converged.Sub(start).Round(time.Millisecond), both)
			if both > 0 && fl == FlavorHalb {
				t.Errorf("both nodes held the VIP during start-up (%d samples)", both)
			}
		})
	}
}

// TestMasterKilledIPv6: the VIP is an IPv6 address (VRRPv3 over IPv6 from
// link-local sources, unsolicited neighbor advertisements).
func TestMasterKilledIPv6(t *testing.T) {
	concurrent(t)
	scenarioWith(t, "master-killed-ipv6", []string{NeedVRRP}, ClassicOptions{IPv6: true}, masterKilled)
}

// TestMasterKilledUnicast: adverts go to the peer's address, not multicast.
func TestMasterKilledUnicast(t *testing.T) {
	concurrent(t)
	scenarioWith(t, "master-killed-unicast", []string{NeedVRRP}, ClassicOptions{Unicast: true}, masterKilled)
}

// TestDualMaster: two VIPs, each node MASTER of one. lb1 dies: lb2 holds
// both, and the clients of lb2's own VIP never notice; lb1 returns: each
// node is MASTER of its own VIP again.
func TestDualMaster(t *testing.T) {
	concurrent(t)
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
	row := reportRow(t, "maintenance", string(FlavorHalb))
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
		row.Notef("%d requests failed entering maintenance: %s", w.Failed, firstError(w))
	}
	onlyAcrossTheSwitch(t, c, w)
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

// TestMasterKilledVMAC: master killed with use_vmac. The client's ARP
// entry for the VIP is the virtual MAC 00:00:5e:00:01:33 (VRID 51) before
// and after the failover: it never needs to re-resolve the VIP. keepalived
// 2.2 leaves the base interface's arp_announce alone, so the node's ARP
// requests (sender: the VIP, from the base interface's MAC) repoint the
// client at the base interface: for the reference flavor that is a note,
// and its outage may run one advert interval longer (see below).
func TestMasterKilledVMAC(t *testing.T) {
	concurrent(t)
	scenarioWith(t, "master-killed-vmac", []string{NeedVRRP}, ClassicOptions{UseVMAC: true},
		func(t *testing.T, c *Classic, row *Row) {
			const vmac = "00:00:5e:00:01:33"
			arpEntry := func(when string) {
				if c.ARPOwner() == vmac {
					return
				}
				mac, state, _ := c.Client.Neighbor("eth0", c.VIP)
				msg := fmt.Sprintf("%s the failover the client's ARP entry for the VIP is %s (%s, %s), want %s", when, mac, c.ARPOwner(), state, vmac)
				if c.Opts.Flavor == FlavorHalb {
					t.Error(msg)
				} else {
					row.Notef("%s", msg)
				}
			}
			WaitFor(5*time.Second, func() bool { return c.ARPOwner() == vmac })
			arpEntry("before")
			bound := failoverBound(c)
			w, _ := measure(t, c, row,
				func() { c.LB[0].Kill() },
				func() bool { return c.LB[1].HoldsVIP(c.VIP) },
				bound+5*time.Second, 2*time.Second)
			if c.Opts.Flavor == FlavorHalb {
				checkOutage(t, row, w, bound)
			} else {
				// keepalived's gratuitous ARPs are requests, which the
				// killed node's macvlan (still holding the VIP) answers
				// from the shared MAC: the switch sends the client's
				// frames back to it until lb2's next advert.
				checkOutage(t, row, w, bound+c.Opts.AdvertInterval)
				if w.LongestOutage > bound {
					row.Notef("outage %s exceeds %s: the killed node's macvlan answers lb2's gratuitous ARP requests, so the switch points the virtual MAC back at it until lb2's next advert", w.LongestOutage, bound)
				}
			}
			row.VIPOwner, row.VIPHolders = c.ARPOwner(), c.VIPHolders()
			if live := c.LiveVIPHolders(); !slices.Equal(live, []string{"lb2"}) {
				t.Errorf("live VIP holders %v, want [lb2]", live)
			}
			arpEntry("after")
			if _, err := c.Get(); err != nil {
				t.Errorf("after the failover: %v", err)
			}
		})
}

// onlyAcrossTheSwitch checks a planned move of the VIP from lb1 to lb2
// (halb): no request may fail except one in flight at the moment the
// client's traffic moved, when lb2 took over and announced the VIP. A
// connection the client opened to lb1 just before then has its next
// packets answered by lb2, which knows nothing of it (a reset): L2 failover
// without connection state cannot save it. Every request sent more than
// 100ms before or after that moment must succeed.
func onlyAcrossTheSwitch(t *testing.T, c *Classic, w *ProbeResult) {
	t.Helper()
	if w.Failed == 0 {
		return
	}
	ctl := c.LB[1].API()
	defer ctl.Close()
	st, err := ctl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ins []vrrp.InstanceStatus
	if err := json.Unmarshal(st.VRRP, &ins); err != nil || len(ins) == 0 || ins[0].LastTransition == nil {
		t.Fatalf("lb2's VRRP status: %v %s", err, st.VRRP)
	}
	tr := ins[0].LastTransition
	if tr.To != vrrp.StateMaster {
		t.Fatalf("lb2's last transition %+v, want to MASTER", tr)
	}
	const grace = 100 * time.Millisecond
	for _, s := range w.Samples {
		if s.OK {
			continue
		}
		inFlight := !s.Sent.After(tr.At.Add(grace)) && !s.Sent.Add(s.Latency).Before(tr.At.Add(-grace))
		if !inFlight {
			t.Errorf("a request sent at %s (lb2 took over at %s) failed: %s",
				s.Sent.Format("15:04:05.000"), tr.At.Format("15:04:05.000"), s.Err)
		}
	}
}

// TestMasterKilledTCPService: the client talks to the TCP-mode service on
// the VIP (halbd's own TCP proxy; HAProxy in tcp mode), through a failover.
func TestMasterKilledTCPService(t *testing.T) {
	concurrent(t)
	scenario(t, "master-killed-tcp-service", []string{NeedVRRP}, func(t *testing.T, c *Classic, row *Row) {
		c.URL = fmt.Sprintf("http://%s:%d/", ClassicVIP, ClassicTCPPort)
		if !WaitFor(10*time.Second, func() bool { _, err := c.Get(); return err == nil }) {
			t.Fatal("no answer from the TCP service through the VIP")
		}
		masterKilled(t, c, row)
	})
}
