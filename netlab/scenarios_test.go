package netlab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// report collects every scenario row of this run; TestMain writes it to
// out/netlab/ (or $NETLAB_REPORT_DIR).
var report Report

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

// runTests runs the tests and returns the exit code; its deferred calls
// run, unlike those of a function that calls os.Exit.
func runTests(m *testing.M) int {
	if p := os.Getenv(envHalbd); p != "" && RootReason() == "" {
		HalbdPath = p // an isolated run (see isolated): the parent built it
	} else if RootReason() == "" {
		// halb nodes run the halbd of this tree.
		dir, err := os.MkdirTemp("", "netlab-halbd-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		HalbdPath = filepath.Join(dir, "halbd")
		if out, err := exec.Command("go", "build", "-o", HalbdPath, "../cmd/halbd").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "netlab: build halbd: %v\n%s", err, out)
			return 1
		}
	}
	code := m.Run()
	if RootReason() == "" {
		if rows := report.Rows(); len(rows) > 0 {
			dir := os.Getenv("NETLAB_REPORT_DIR")
			if dir == "" {
				dir = filepath.Join("..", "out", "netlab")
			}
			if err := report.Write(dir); err != nil {
				fmt.Fprintln(os.Stderr, "netlab: write report:", err)
				code = 1
			} else {
				fmt.Printf("netlab: report in %s/report.md and report.json\n", dir)
			}
		}
		// Nothing of this run may be left behind: every lab namespace
		// carries the test process's pid in its prefix.
		prefix := fmt.Sprintf("hl%dx", os.Getpid())
		entries, _ := os.ReadDir(NetnsDir)
		for _, e := range entries {
			if len(e.Name()) > len(prefix) && e.Name()[:len(prefix)] == prefix {
				fmt.Fprintln(os.Stderr, "netlab: namespace left behind:", e.Name())
				code = 1
			}
		}
	}
	return code
}

// labSlots bounds how many lab topologies of concurrent scenarios run at
// once: NETLAB_PARALLEL, default 4. (go test's -parallel, GOMAXPROCS by
// default, bounds them too: make test passes -parallel 4.)
var labSlots = make(chan struct{}, envInt("NETLAB_PARALLEL", 4))

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// concurrentTests holds the names of the tests marked concurrent.
var concurrentTests sync.Map

// concurrent marks t as a scenario whose figures and bounds cannot be
// disturbed by other such scenarios running at the same time: it measures
// failovers and server changes of hundreds of milliseconds and more
// (adverts of 200ms or longer, checks 2s apart) while the CPU is mostly
// idle. It runs in parallel with the other concurrent tests (after every
// serial test of the package has run, alone: go test's rule), each of
// its lab topologies holding one of labSlots (see labSlot). Scenarios that
// load the machine or time things to tens of milliseconds stay serial.
func concurrent(t *testing.T) {
	t.Parallel()
	concurrentTests.Store(t.Name(), true)
}

// labSlot is called by a test, or a subtest, of a concurrent test before it
// builds its lab: it runs in parallel with its siblings and holds a slot of
// labSlots until its cleanups (the lab's teardown among them) are done. In
// a serial test it does nothing.
func labSlot(t *testing.T) {
	parts := strings.Split(t.Name(), "/")
	marked := false
	for i := range parts {
		if _, ok := concurrentTests.Load(strings.Join(parts[:i+1], "/")); ok {
			marked = true
		}
	}
	if !marked {
		return
	}
	if _, self := concurrentTests.Load(t.Name()); !self {
		t.Parallel()
	}
	labSlots <- struct{}{}
	t.Cleanup(func() { <-labSlots })
}

// scenario runs fn once per flavor on a fresh classic topology and records a
// report row. The halb flavor is skipped, with the reason, while halbd
// lacks a feature the scenario needs.
func scenario(t *testing.T, name string, needs []string, fn func(t *testing.T, c *Classic, row *Row)) {
	scenarioWith(t, name, needs, ClassicOptions{}, fn)
}

// scenarioWith is scenario with topology options (the flavor is set per run).
func scenarioWith(t *testing.T, name string, needs []string, opts ClassicOptions, fn func(t *testing.T, c *Classic, row *Row)) {
	for _, fl := range Flavors {
		t.Run(string(fl), func(t *testing.T) {
			SkipUnlessRoot(t)
			row := &Row{Scenario: name, Flavor: string(fl)}
			for _, need := range needs {
				if why := HalbLacks(need); fl == FlavorHalb && why != "" {
					row.Skipped = why
					row.Judge(false)
					report.Add(row)
					t.Skip(why)
				}
			}
			labSlot(t)
			recordWhenDone(t, row)
			l := New(t)
			o := opts
			o.Flavor = fl
			c, err := NewClassic(l, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			if err := c.WaitConverged(15 * time.Second); err != nil {
				t.Fatal(err)
			}
			fn(t, c, row)
		})
	}
}

// reportRow returns a row for the report, added when t ends (pass or fail).
func reportRow(t *testing.T, scenario, flavor string) *Row {
	row := &Row{Scenario: scenario, Flavor: flavor}
	recordWhenDone(t, row)
	return row
}

// recordWhenDone judges row when t ends (see Row.Judge) and adds it to the
// report; a halb row over its bound fails t.
func recordWhenDone(t *testing.T, row *Row) {
	t.Cleanup(func() {
		if row.Judge(t.Failed()) {
			t.Errorf("%s/%s: bound %s not held (outage %s)", row.Scenario, row.Flavor,
				time.Duration(row.BoundMS)*time.Millisecond, time.Duration(row.OutageMS)*time.Millisecond)
		}
		report.Add(row)
	})
}

// measure runs the client probe around fault: two seconds of baseline, the
// fault, then until settle returns true (or timeout; nil settle watches the
// whole timeout) and tail longer.
// It fills the row's client figures from the fault's start on.
func measure(t *testing.T, c *Classic, row *Row, fault func(), settle func() bool, timeout, tail time.Duration) (*ProbeResult, time.Time) {
	t.Helper()
	p := c.StartProbe(context.Background(), false)
	time.Sleep(2 * time.Second) // baseline; the control below checks its first second
	t0 := time.Now()
	fault()
	if settle == nil {
		time.Sleep(timeout) // watch the whole stretch
	} else if !WaitFor(timeout, settle) {
		t.Errorf("did not settle within %s after the fault", timeout)
	}
	time.Sleep(tail)
	all := p.Stop()
	// Control: requests that finished before the fault all succeeded
	// (those still in flight when it struck may fail because of it).
	before := all.Window(time.Time{}, t0.Add(-time.Second))
	if before.Failed > 0 {
		t.Errorf("control: %d of %d requests failed before the fault: %s", before.Failed, before.Sent, firstError(before))
	}
	w := all.Window(t0, time.Now())
	row.OutageMS = w.LongestOutage.Milliseconds()
	row.Failed, row.Sent = w.Failed, w.Sent
	return w, t0
}

func firstError(r *ProbeResult) string {
	for _, s := range r.Samples {
		if !s.OK {
			return fmt.Sprintf("%s at %s", s.Err, s.Sent.Format("15:04:05.000"))
		}
	}
	return ""
}

// finish records where the VIP is and checks it is where want says, held by
// exactly one live node, with the client's ARP entry pointing to it.
func finish(t *testing.T, c *Classic, row *Row, want string) {
	t.Helper()
	// The client's entry moves on a gratuitous ARP, or when it re-resolves.
	WaitFor(5*time.Second, func() bool { return c.ARPOwner() == want })
	row.VIPOwner = c.ARPOwner()
	row.VIPHolders = c.VIPHolders()
	if live := c.LiveVIPHolders(); !slices.Equal(live, []string{want}) {
		t.Errorf("live VIP holders %v, want [%s]", live, want)
	}
	if row.VIPOwner != want {
		mac, state, _ := c.Client.Neighbor("eth0", c.VIP)
		t.Errorf("client's ARP entry for the VIP points to %s (%s %s), want %s", row.VIPOwner, mac, state, want)
	}
	if stale := len(row.VIPHolders) - len(c.LiveVIPHolders()); stale > 0 {
		row.Notef("a killed node keeps the VIP configured (stale, nothing cleans it up): holders %v", row.VIPHolders)
	}
}

// failoverBound is the outage a client may see when lb1 fails: lb2 waits the
// Master_Down_Interval, plus slack for the gratuitous ARP, the new master's
// first answer and the probe's period: an advert interval and 250ms, at most
// a second.
func failoverBound(c *Classic) time.Duration {
	slack := min(time.Second, c.Opts.AdvertInterval+250*time.Millisecond)
	return MasterDownInterval(c.Opts.AdvertInterval, c.Opts.Priorities[1]) + slack
}

func checkOutage(t *testing.T, row *Row, w *ProbeResult, bound time.Duration) {
	t.Helper()
	row.SetBound(bound, w.LongestOutage <= bound)
	if w.LongestOutage > bound {
		t.Errorf("client outage %s exceeds the bound %s", w.LongestOutage, bound)
	}
}

func TestMasterKilled(t *testing.T) {
	concurrent(t)
	scenario(t, "master-killed", []string{NeedVRRP}, func(t *testing.T, c *Classic, row *Row) {
		bound := failoverBound(c)
		w, _ := measure(t, c, row,
			func() { c.LB[0].Kill() },
			func() bool { return c.LB[1].HoldsVIP(c.VIP) },
			bound+5*time.Second, 2*time.Second)
		checkOutage(t, row, w, bound)
		if w.Failed == 0 && w.LongestOutage < c.Opts.AdvertInterval {
			t.Errorf("control: killing the master cost nothing; the probe cannot see the failover")
		}
		finish(t, c, row, "lb2")
	})
}

func TestMasterLinkDown(t *testing.T) {
	concurrent(t)
	scenario(t, "master-link-down", []string{NeedVRRP}, func(t *testing.T, c *Classic, row *Row) {
		bound := failoverBound(c)
		w, _ := measure(t, c, row,
			func() {
				if err := c.LB[0].Host.SetLink("eth0", false); err != nil {
					t.Fatal(err)
				}
			},
			func() bool { return c.LB[1].HoldsVIP(c.VIP) },
			bound+5*time.Second, 2*time.Second)
		checkOutage(t, row, w, bound)
		// lb1's link is down: only lb2 can answer, whatever lb1 still holds.
		WaitFor(5*time.Second, func() bool { return c.ARPOwner() == "lb2" })
		row.VIPOwner, row.VIPHolders = c.ARPOwner(), c.VIPHolders()
		if row.VIPOwner != "lb2" {
			t.Errorf("client's ARP entry points to %s, want lb2", row.VIPOwner)
		}
		if c.LB[0].HoldsVIP(c.VIP) {
			row.Notef("lb1 keeps the VIP on its downed link")
		}
	})
}

// TestMasterBackLinkDown: the master's link to the backends goes down.
// The instance tracks it (track.interfaces; keepalived's track_interface),
// so the master enters FAULT at once, sends a priority-0 advert and drops
// the VIP; the backup takes over after its Skew_Time, not after a
// Master_Down_Interval. The client's outage is that skew, the time the
// node takes to see its link go, and the announcement.
func TestMasterBackLinkDown(t *testing.T) {
	concurrent(t)
	scenarioWith(t, "master-back-link-down", []string{NeedVRRP}, ClassicOptions{TrackBackLink: true},
		func(t *testing.T, c *Classic, row *Row) {
			skew := time.Duration(256-c.Opts.Priorities[1]) * c.Opts.AdvertInterval / 256
			bound := skew + min(time.Second, c.Opts.AdvertInterval+250*time.Millisecond)
			w, _ := measure(t, c, row,
				func() {
					if err := c.LB[0].Host.SetLink("eth1", false); err != nil {
						t.Fatal(err)
					}
				},
				func() bool { return c.LB[1].HoldsVIP(c.VIP) && !c.LB[0].HoldsVIP(c.VIP) },
				failoverBound(c)+5*time.Second, 2*time.Second)
			checkOutage(t, row, w, bound)
			if w.Failed == 0 {
				t.Errorf("control: the master's back link going down cost nothing; the probe cannot see the failover")
			}
			finish(t, c, row, "lb2")
		})
}

func TestFailbackOnReturn(t *testing.T) {
	concurrent(t)
	scenario(t, "failback-preempt", []string{NeedVRRP}, func(t *testing.T, c *Classic, row *Row) {
		c.LB[0].Kill()
		if !WaitFor(failoverBound(c)+5*time.Second, func() bool { return c.LB[1].HoldsVIP(c.VIP) }) {
			t.Fatal("lb2 did not take over")
		}
		if !WaitFor(5*time.Second, func() bool { _, err := c.Get(); return err == nil }) {
			t.Fatal("no service through lb2")
		}
		// lb1 returns with the higher priority and preempts. The client
		// should barely notice: lb2 steps down as lb1 takes over.
		bound := c.Opts.AdvertInterval + time.Second
		w, _ := measure(t, c, row,
			func() {
				if err := c.LB[0].Start(); err != nil {
					t.Fatal(err)
				}
			},
			func() bool { return slices.Equal(c.VIPHolders(), []string{"lb1"}) },
			MasterDownInterval(c.Opts.AdvertInterval, c.Opts.Priorities[0])+10*time.Second, 2*time.Second)
		checkOutage(t, row, w, bound)
		finish(t, c, row, "lb1")
	})
}

func TestPartitionAndHeal(t *testing.T) {
	concurrent(t)
	scenario(t, "partition-heal", []string{NeedVRRP}, func(t *testing.T, c *Classic, row *Row) {
		bound := failoverBound(c)
		p := c.StartProbe(context.Background(), false)
		time.Sleep(2 * time.Second)
		t0 := time.Now()
		heal, err := Partition(c.LB[0].Host, c.LB[1].Host)
		if err != nil {
			p.Stop()
			t.Fatal(err)
		}
		// Cut off from each other, both become MASTER: VRRP's split brain.
		if !WaitFor(bound+5*time.Second, func() bool { return slices.Equal(c.VIPHolders(), []string{"lb1", "lb2"}) }) {
			t.Errorf("partitioned: VIP holders %v, want both (split brain)", c.VIPHolders())
		}
		row.Notef("partitioned: both nodes MASTER, the client's ARP entry flaps between them (now %s)", c.ARPOwner())
		// Heal after lb2's second round of gratuitous ARPs (keepalived's
		// garp_master_delay, 5s), so the client may point at either node.
		time.Sleep(6 * time.Second)
		tHeal := time.Now()
		arpAtHeal := c.ARPOwner()
		if err := heal(); err != nil {
			t.Fatal(err)
		}
		// Healed: lb2 hears lb1's higher priority and steps down. The
		// client must end up on lb1; how long that takes is the figure.
		if !WaitFor(bound+5*time.Second, func() bool { return slices.Equal(c.VIPHolders(), []string{"lb1"}) }) {
			t.Errorf("healed: VIP holders %v, want [lb1]", c.VIPHolders())
		}
		recovered := WaitFor(60*time.Second, func() bool { return c.ARPOwner() == "lb1" })
		time.Sleep(2 * time.Second)
		all := p.Stop()

		split := all.Window(t0, tHeal)
		after := all.Window(tHeal, time.Now())
		row.OutageMS = max(split.LongestOutage, after.LongestOutage).Milliseconds()
		row.Failed, row.Sent = split.Failed+after.Failed, split.Sent+after.Sent
		// The bound applies to both stretches; keepalived's is a finding.
		row.SetBound(bound, split.LongestOutage <= bound && after.LongestOutage <= bound)
		if split.LongestOutage > bound {
			t.Errorf("partitioned: client outage %s exceeds the bound %s", split.LongestOutage, bound)
		}
		if !recovered {
			t.Errorf("healed: the client's ARP entry still points to %s after 60s", c.ARPOwner())
		}
		if after.LongestOutage > bound {
			// keepalived: when lb2 steps down on lb1's first advert, lb1
			// never sees a lower-priority advert and sends no gratuitous
			// ARP; a client pointing at lb2 waits for ARP to re-resolve.
			msg := fmt.Sprintf("after the heal the client (ARP on %s at the heal) had no answer for %s (%d failed) until its ARP entry moved to lb1",
				arpAtHeal, after.LongestOutage.Round(time.Millisecond), after.Failed)
			if c.Opts.Flavor == FlavorReference {
				row.Notef("%s: keepalived sends no gratuitous ARP when the backup steps down", msg)
			} else {
				t.Errorf("%s; bound %s", msg, bound)
			}
		}
		finish(t, c, row, "lb1")
	})
}

// backendBound is when a failed server must be out of the pool: fall
// failed checks an interval apart, plus a second of slack. A refused check
// fails at once; an unanswered one (host gone, or a server that accepts and
// never answers) fails at its timeout: halb's check timeout; for HAProxy
// min(timeout connect, inter) (2s here), which its documentation gives for
// the connect and which the lab measures for a hung server too: HAProxy
// 2.6 switches to "timeout check" (1s) only once it has seen the
// connection established, and its logs show such checks failing after
// 1.5-2s ("Layer7 timeout, check duration: 1999ms").
func backendBound(fl Flavor, unanswered bool) time.Duration {
	per := ClassicCheckInterval
	if unanswered {
		if fl == FlavorReference {
			per += min(5*time.Second, ClassicCheckInterval) // HAProxy: timeout connect 5s
		} else {
			per += ClassicCheckTimeout
		}
	}
	return ClassicCheckFall*per + time.Second
}

// checkBackendOut asserts that failures stopped within the bound after the
// fault and that the survivor answered everything after it.
func checkBackendOut(t *testing.T, row *Row, w *ProbeResult, t0 time.Time, survivor string, bound time.Duration) {
	t.Helper()
	late := w.Window(t0.Add(bound), time.Now())
	row.SetBound(bound, late.Failed == 0 && late.Sent > 0 && late.Backends[survivor] == late.OK)
	if late.Failed > 0 {
		t.Errorf("%d requests failed more than %s after the fault", late.Failed, bound)
	}
	if late.Sent == 0 || late.Backends[survivor] != late.OK {
		t.Errorf("after the bound, backends answering %v, want only %s", late.Backends, survivor)
	}
	if w.Failed > 0 {
		row.Notef("%d requests failed before the server was taken out", w.Failed)
	}
}

// TestBackendKilled: a refused connect is redispatched to the other server
// by both proxies (HAProxy: retries 3 + redispatch only after its check
// takes the server out; halb: at once, before any byte is sent), so the
// scenario runs on halb before health checks exist.
func TestBackendKilled(t *testing.T) {
	concurrent(t)
	scenario(t, "backend-killed", []string{NeedProxy}, func(t *testing.T, c *Classic, row *Row) {
		bound := backendBound(c.Opts.Flavor, false)
		w, t0 := measure(t, c, row,
			func() { c.Backends[0].Close() },
			nil,
			bound+2*time.Second, 0)
		checkBackendOut(t, row, w, t0, "be2", bound)
		finish(t, c, row, "lb1")
	})
}

func TestBackendHostGone(t *testing.T) {
	concurrent(t)
	scenario(t, "backend-host-gone", []string{NeedProxy, NeedHealth}, func(t *testing.T, c *Classic, row *Row) {
		bound := backendBound(c.Opts.Flavor, true)
		w, t0 := measure(t, c, row,
			func() {
				if err := c.BEHosts[0].Remove(); err != nil {
					t.Fatal(err)
				}
			},
			nil,
			bound+2*time.Second, 0)
		checkBackendOut(t, row, w, t0, "be2", bound)
		// halb's defaults: a blackholed server costs no request — new
		// connects give up after 500ms for the other server, and a
		// request on a pooled connection that the server's TCP does not
		// acknowledge within 400ms goes to the other server too.
		if c.Opts.Flavor == FlavorHalb && w.Failed > 0 {
			t.Errorf("%d requests failed; want none at halb's defaults", w.Failed)
		}
		finish(t, c, row, "lb1")
	})
}

// TestServiceHealthMovesVIP: lb1 loses both backends (a partition on the
// back LAN, lb1 only); its checks take them out, the tracked service has
// no healthy server, its priority drops by 60 below lb2's, and lb2 takes
// the VIP and serves. keepalived does it with a vrrp_script asking
// HAProxy's monitor frontend.
func TestServiceHealthMovesVIP(t *testing.T) {
	concurrent(t)
	scenarioWith(t, "service-health-moves-vip", []string{NeedVRRP, NeedHealth}, ClassicOptions{TrackServices: true},
		func(t *testing.T, c *Classic, row *Row) {
			// Checks: fall x (interval + timeout) for a blackholed server;
			// then the tracking (keepalived's script: 1s), lb2 preempting
			// on lb1's next advert, and slack.
			bound := backendBound(FlavorHalb, true) + time.Second + 3*c.Opts.AdvertInterval + 2*time.Second
			if c.Opts.Flavor == FlavorReference {
				bound = backendBound(FlavorReference, true) + time.Second + 3*c.Opts.AdvertInterval + 2*time.Second
			}
			var heals []func() error
			w, _ := measure(t, c, row,
				func() {
					for _, be := range c.BEHosts {
						heal, err := Partition(c.LB[0].Host, be)
						if err != nil {
							t.Fatal(err)
						}
						heals = append(heals, heal)
					}
				},
				func() bool { return c.LB[1].HoldsVIP(c.VIP) && !c.LB[0].HoldsVIP(c.VIP) },
				bound, 3*time.Second)
			row.SetBound(bound, w.LongestOutage <= bound)
			if w.LongestOutage > bound {
				t.Errorf("client outage %s exceeds the bound %s", w.LongestOutage, bound)
			}
			// The tail after lb2 took over: everything answered, by lb2.
			late := w.Window(time.Now().Add(-2*time.Second), time.Now())
			if late.Failed > 0 || late.Sent == 0 || late.Nodes["lb2"] != late.OK {
				t.Errorf("after lb2 took over: %d of %d failed, answered by %v; want all by lb2", late.Failed, late.Sent, late.Nodes)
			}
			row.Notef("%d requests failed while lb1 had no backend", w.Failed)
			finish(t, c, row, "lb2")
			for _, heal := range heals {
				heal()
			}
		})
}

// TestBackendFails500: be1 answers 500 (its /healthz too); the http check
// takes it out within fall x interval, and be2 serves everything after.
func TestBackendFails500(t *testing.T) {
	concurrent(t)
	scenario(t, "backend-fails-500", []string{NeedProxy, NeedHealth}, func(t *testing.T, c *Classic, row *Row) {
		bound := ClassicCheckFall*ClassicCheckInterval + time.Second
		w, t0 := measure(t, c, row, func() { c.Backends[0].SetMode(ModeFail) }, nil, bound+2*time.Second, 0)
		checkBackendOut(t, row, w, t0, "be2", bound)
		finish(t, c, row, "lb1")
	})
}

// TestBackendFails500Observed: as backend-fails-500, with the backend
// observing responses (observe: layer7 on halb; HAProxy's observe layer7
// error-limit 3 on-error mark-down): fall 500s in a row from traffic take
// be1 out at once, long before its checks would.
func TestBackendFails500Observed(t *testing.T) {
	scenarioWith(t, "backend-fails-500-observed", []string{NeedProxy, NeedHealth}, ClassicOptions{ObserveLayer7: true},
		func(t *testing.T, c *Classic, row *Row) {
			bound := time.Second
			w, t0 := measure(t, c, row, func() { c.Backends[0].SetMode(ModeFail) }, nil, bound+2*time.Second, 0)
			checkBackendOut(t, row, w, t0, "be2", bound)
			// fall 500s, and the requests already sent to be1 when the
			// third came back.
			if c.Opts.Flavor == FlavorHalb && w.Failed > 2*ClassicCheckFall {
				t.Errorf("%d requests failed; want about fall (%d)", w.Failed, ClassicCheckFall)
			}
			finish(t, c, row, "lb1")
		})
}

// TestBackendHangs: be1 accepts and never answers; each check times out,
// so it is out within fall x (interval + check timeout), see backendBound.
func TestBackendHangs(t *testing.T) {
	concurrent(t)
	scenario(t, "backend-hangs", []string{NeedProxy, NeedHealth}, func(t *testing.T, c *Classic, row *Row) {
		bound := backendBound(c.Opts.Flavor, true)
		w, t0 := measure(t, c, row, func() { c.Backends[0].SetMode(ModeHang) }, nil, bound+2*time.Second, 0)
		checkBackendOut(t, row, w, t0, "be2", bound)
		finish(t, c, row, "lb1")
	})
}

// TestBackendComesBack: be1 is refused until it is out, then listens
// again; within rise x interval (+ jitter and slack) it takes requests
// again, and nothing fails on the way back.
func TestBackendComesBack(t *testing.T) {
	concurrent(t)
	scenario(t, "backend-comes-back", []string{NeedProxy, NeedHealth}, func(t *testing.T, c *Classic, row *Row) {
		out := backendBound(c.Opts.Flavor, false)
		back := ClassicCheckRise*ClassicCheckInterval + ClassicCheckInterval/2 + time.Second
		c.Backends[0].SetMode(ModeRefuse)
		time.Sleep(out)
		w, t0 := measure(t, c, row, func() { c.Backends[0].SetMode(ModeOK) }, nil, back+2*time.Second, 0)
		late := w.Window(t0.Add(back), time.Now())
		row.SetBound(back, w.Failed == 0 && late.Backends["be1"] > 0)
		if w.Failed > 0 {
			t.Errorf("%d requests failed while be1 came back", w.Failed)
		}
		if late.Backends["be1"] == 0 {
			t.Errorf("be1 answered nothing %s after it came back: %v", back, late.Backends)
		}
		first := time.Duration(-1)
		for _, s := range w.Samples {
			if s.Backend == "be1" && s.Sent.After(t0) {
				first = s.Sent.Sub(t0)
				break
			}
		}
		row.Notef("be1 answered again %v after it listened again", first.Round(10*time.Millisecond))
		finish(t, c, row, "lb1")
	})
}
