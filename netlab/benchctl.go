package netlab

// The control-plane benchmarks (`netlab benchctl`): the reload of a config
// of many servers under client load, and VRRP with many instances at short
// advert intervals, each for halb and for the reference (HAProxy,
// keepalived) in the same run.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vishvananda/netlink"
)

// CtlOptions configure BenchControl.
type CtlOptions struct {
	// Backends and Servers (each) of the reload config; default 1000 and
	// 10. Every backend is the default backend of a service of its own
	// (SoloAddr, port 10000 up).
	Backends, Servers int
	// Listeners is how many in-process servers on the two backend hosts
	// stand behind the config's servers (server j of backend b is
	// listener (b*Servers+j) mod Listeners); default 20.
	Listeners int
	// Health is the backends' health mapping; default "check: tcp,
	// interval: 30s, timeout: 1s" (10 000 servers checked: 333 checks/s).
	Health string
	// Reloads is how many changed configs each flavor applies; default
	// 10. -1: no reload part.
	Reloads int
	// Rate is the probe's requests/s, on keep-alive connections and on
	// new ones each; default 200.
	Rate int
	// Instances and Advert are the VRRP part: that many instances on two
	// nodes at that advert interval; default 100 and 50ms. Instances -1:
	// no VRRP part.
	Instances int
	Advert    time.Duration
	// CPUWindow is how long the idle VRRP CPU is measured; default 20s.
	CPUWindow time.Duration
	// Failovers is how many times each flavor's master is frozen; default 3.
	Failovers int
}

func (o *CtlOptions) defaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Backends, 1000)
	def(&o.Servers, 10)
	def(&o.Listeners, 20)
	def(&o.Reloads, 10)
	def(&o.Rate, 200)
	def(&o.Instances, 100)
	def(&o.Failovers, 3)
	if o.Health == "" {
		o.Health = "check: tcp, interval: 30s, timeout: 1s"
	}
	if o.Advert == 0 {
		o.Advert = 50 * time.Millisecond
	}
	if o.CPUWindow == 0 {
		o.CPUWindow = 20 * time.Second
	}
}

// CtlReport is the outcome of BenchControl.
type CtlReport struct {
	Command  string        `json:"command,omitempty"`
	Started  time.Time     `json:"started"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	Backends int           `json:"backends"`
	Servers  int           `json:"servers_per_backend"`
	Services int           `json:"services"`
	Health   string        `json:"health"`
	Rate     int           `json:"probe_rate"`
	// Reload has a row per flavor, reference first.
	Reload []ReloadRow `json:"reload"`
	// VRRP has a row per flavor, reference first; empty when skipped.
	VRRP []VRRPRow `json:"vrrp,omitempty"`
}

// ReloadRow is one flavor's reloads of the big config under load.
type ReloadRow struct {
	Flavor Flavor `json:"flavor"`
	How    string `json:"how"`
	// StartS is from starting the daemon with the big config until the
	// probed service answers.
	StartS float64 `json:"start_s"`
	// ApplyMS is each reload, from its start until the proxy said it was
	// in force (see Reload).
	ApplyMS     []float64 `json:"apply_ms"`
	ApplyMedian float64   `json:"apply_median_ms"`
	Apply       Spread    `json:"apply_spread_ms"`
	// RSS of the proxy (halbd; HAProxy's master and workers): once
	// started and settled, and after the reloads (HAProxy's old workers
	// gone); PeakRSS is the serving process's VmHWM.
	RSSBefore int64 `json:"rss_before"`
	RSSAfter  int64 `json:"rss_after"`
	PeakRSS   int64 `json:"peak_rss"`
	// CPUS is the proxy's CPU seconds over the reloads.
	CPUS float64 `json:"cpu_s"`
	// Sent and Failed count the probe's requests during the reloads
	// (both probes together); Errors are the first failures.
	Sent   int      `json:"sent"`
	Failed int      `json:"failed"`
	Errors []string `json:"errors,omitempty"`
}

// VRRPRow is one flavor's VRRP figures.
type VRRPRow struct {
	Flavor    Flavor  `json:"flavor"`
	Instances int     `json:"instances"`
	AdvertMS  float64 `json:"advert_ms"`
	// CPU is the share of one core the VRRP daemon (halbd; keepalived's
	// processes) used over the window, on the master and the backup.
	MasterCPU float64 `json:"master_cpu"`
	BackupCPU float64 `json:"backup_cpu"`
	WindowS   float64 `json:"window_s"`
	// FailoverMS is, per instance and failover, the time from freezing
	// the master until the backup added the instance's VIP (netlink's
	// address notification in the backup's namespace).
	FailoverMS []float64 `json:"failover_ms"`
	Median     float64   `json:"failover_median_ms"`
	P99        float64   `json:"failover_p99_ms"`
	Max        float64   `json:"failover_max_ms"`
	// Missing counts instances the backup did not take within 10s.
	Missing int `json:"missing"`
	// Unsettled says why the failovers stopped early: the pair did not
	// return to lb1 holding every VIP after a thaw.
	Unsettled string `json:"unsettled,omitempty"`
}

// ctlConfig is the reload config: backend bN (N from 0) of o.Servers
// servers behind service svcN on port 10000+N; w is the weight of
// server 0 of backend 0, what each reload changes.
func ctlConfig(o CtlOptions, w int) SoloConfig {
	var c SoloConfig
	for b := range o.Backends {
		be := SoloBackend{Name: fmt.Sprintf("b%d", b), Health: o.Health}
		for j := range o.Servers {
			n := 1 + (b*o.Servers+j)%o.Listeners
			sv := SoloServer{Name: fmt.Sprintf("s%d", j), Addr: SoloServerAddr(n)}
			if b == 0 && j == 0 {
				sv.Weight = w
			}
			be.Servers = append(be.Servers, sv)
		}
		c.Backends = append(c.Backends, be)
		c.Services = append(c.Services, SoloService{Name: fmt.Sprintf("svc%d", b), Port: ctlPort + b, Backend: be.Name})
	}
	return c
}

// ctlPort is the port of the first service of the reload config.
const ctlPort = 10000

// BenchControl measures, for the reference and halb in turn (each in a lab
// of its own under l.Dir), the reload of a config of o.Backends x
// o.Servers servers under client load, and VRRP with o.Instances
// instances at o.Advert.
func BenchControl(l *Lab, o CtlOptions, logf func(string, ...any)) (rep *CtlReport, err error) {
	o.defaults()
	rep = &CtlReport{Started: time.Now(), Backends: o.Backends, Servers: o.Servers, Services: o.Backends, Health: o.Health, Rate: o.Rate}
	defer func() { rep.Elapsed = time.Since(rep.Started).Round(time.Second) }()
	for _, fl := range Flavors {
		if o.Reloads < 0 {
			break
		}
		row, err := benchReload(l, fl, o, logf)
		if err != nil {
			return rep, fmt.Errorf("reload %s: %w", fl, err)
		}
		rep.Reload = append(rep.Reload, *row)
	}
	if o.Instances < 0 {
		return rep, nil
	}
	for _, fl := range Flavors {
		row, err := benchVRRP(l, fl, o, logf)
		if err != nil {
			return rep, fmt.Errorf("vrrp %s: %w", fl, err)
		}
		rep.VRRP = append(rep.VRRP, *row)
	}
	return rep, nil
}

// subLab is a lab of its own under l.Dir.
func subLab(l *Lab, name string) (*Lab, error) { return NewLab(filepath.Join(l.Dir, name)) }

// benchReload is one flavor's part of the reload bench, in a lab of its
// own under parent's directory.
func benchReload(parent *Lab, fl Flavor, o CtlOptions, logf func(string, ...any)) (*ReloadRow, error) {
	o.defaults()
	l, err := subLab(parent, "reload-"+string(fl))
	if err != nil {
		return nil, err
	}
	defer l.Close()
	row := &ReloadRow{Flavor: fl}
	start := time.Now()
	s, err := NewSolo(l, fl, o.Listeners, ctlConfig(o, 1))
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := s.WaitServing(ctlPort, 60*time.Second); err != nil {
		return nil, err
	}
	row.StartS = time.Since(start).Seconds()
	logf("%s: %d services, %d servers serving after %.1fs", fl, o.Backends, o.Backends*o.Servers, row.StartS)
	// The first checks of every server (halb checks each at once) settle.
	time.Sleep(5 * time.Second)
	row.RSSBefore = s.ProxyRSS()

	ka := s.Probe(context.Background(), ctlPort, o.Rate, true, 2*time.Second)
	nc := s.Probe(context.Background(), ctlPort, o.Rate, false, 2*time.Second)
	time.Sleep(time.Second)
	cpu0 := s.ProxyCPU()
	var reloadErr error
	for i := range o.Reloads {
		r, err := s.Apply(ctlConfig(o, 2-(i+1)%2), false)
		if err != nil {
			reloadErr = fmt.Errorf("reload %d: %w", i+1, err)
			break
		}
		row.How = r.How
		ms := float64(r.Applied.Sub(r.Start).Microseconds()) / 1000
		row.ApplyMS = append(row.ApplyMS, ms)
		logf("%s: reload %d in %.0fms", fl, i+1, ms)
		time.Sleep(time.Second)
	}
	time.Sleep(time.Second)
	rk, rn := ka.Stop(), nc.Stop()
	row.CPUS = (s.ProxyCPU() - cpu0).Seconds()
	if reloadErr != nil {
		return nil, reloadErr
	}
	row.Sent, row.Failed = rk.Sent+rn.Sent, rk.Failed+rn.Failed
	for _, r := range []*ProbeResult{rk, rn} {
		for _, smp := range r.Samples {
			if !smp.OK && len(row.Errors) < 5 {
				row.Errors = append(row.Errors, fmt.Sprintf("%s: %s", smp.Sent.Format("15:04:05.000"), smp.Err))
			}
		}
	}
	row.ApplyMedian, row.Apply = median(row.ApplyMS), spread(row.ApplyMS)
	// HAProxy's old workers leave once their connections are done.
	if fl == FlavorReference {
		WaitFor(30*time.Second, func() bool { return len(children(s.ProxyPID())) <= 1 })
	}
	row.RSSAfter, row.PeakRSS = s.ProxyRSS(), s.ProxyPeakRSS()
	logf("%s: apply median %.0fms (%.0f..%.0f), %d/%d requests failed, RSS %d -> %d MiB",
		fl, row.ApplyMedian, row.Apply.Min, row.Apply.Max, row.Failed, row.Sent, row.RSSBefore>>20, row.RSSAfter>>20)
	return row, nil
}

// children lists the child pids of pid.
func children(pid int) []string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	return strings.Fields(string(b))
}

// vrrpBenchConfig is node lbN's (n 1 or 2) config of the VRRP bench:
// instances v1..vK, VRID i, VIP 10.20.x.y on eth0; lb1 has the higher
// priority.
func vrrpBenchConfig(n int, o CtlOptions) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "node: {name: lb%d}\nvrrp:\n", n)
	prio := map[int]int{1: 150, 2: 100}[n]
	for i := 1; i <= o.Instances; i++ {
		fmt.Fprintf(&b, "  - {name: v%d, interface: eth0, vrid: %d, priority: %d, advert_interval: %s, vips: [\"%s/16\"]}\n",
			i, i, prio, o.Advert, vrrpBenchVIP(i))
	}
	return []byte(b.String())
}

// vrrpBenchVIP is instance i's VIP.
func vrrpBenchVIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 20, byte(i / 250), byte(1 + i%250)})
}

// benchVRRP is one flavor's part of the VRRP bench, in a lab of its own
// under parent's directory.
func benchVRRP(parent *Lab, fl Flavor, o CtlOptions, logf func(string, ...any)) (*VRRPRow, error) {
	o.defaults()
	l, err := subLab(parent, "vrrp-"+string(fl))
	if err != nil {
		return nil, err
	}
	defer l.Close()
	lan, err := l.AddLAN("front")
	if err != nil {
		return nil, err
	}
	var nodes [2]*Node
	for i := range nodes {
		h, err := l.AddHost(fmt.Sprintf("lb%d", i+1))
		if err != nil {
			return nil, err
		}
		if _, err := h.Connect(lan, "eth0", fmt.Sprintf("10.20.255.%d/16", i+1)); err != nil {
			return nil, err
		}
		if nodes[i], err = l.StartNode(h, fl, vrrpBenchConfig(i+1, o)); err != nil {
			return nil, err
		}
	}
	vips := make([]netip.Addr, o.Instances)
	for i := range vips {
		vips[i] = vrrpBenchVIP(i + 1)
	}
	holds := func(n *Node) int {
		c := 0
		for _, v := range vips {
			if n.HoldsVIP(v) {
				c++
			}
		}
		return c
	}
	converged := func() bool { return holds(nodes[0]) == len(vips) && holds(nodes[1]) == 0 }
	if !WaitFor(30*time.Second, converged) {
		return nil, fmt.Errorf("not converged within 30s: lb1 holds %d VIPs, lb2 %d", holds(nodes[0]), holds(nodes[1]))
	}
	row := &VRRPRow{Flavor: fl, Instances: o.Instances, AdvertMS: float64(o.Advert.Microseconds()) / 1000, WindowS: o.CPUWindow.Seconds()}
	daemon := map[Flavor]string{FlavorHalb: "halbd", FlavorReference: "keepalived"}[fl]
	pid := func(n *Node) int {
		for _, p := range n.Processes() {
			if p.Name == daemon {
				return p.Cmd.Process.Pid
			}
		}
		return 0
	}
	time.Sleep(2 * time.Second)
	m0, b0, t0 := cpuTree(pid(nodes[0])), cpuTree(pid(nodes[1])), time.Now()
	time.Sleep(o.CPUWindow)
	m1, b1, el := cpuTree(pid(nodes[0])), cpuTree(pid(nodes[1])), time.Since(t0)
	row.MasterCPU, row.BackupCPU = (m1-m0).Seconds()/el.Seconds(), (b1-b0).Seconds()/el.Seconds()
	logf("%s: %d instances at %s: CPU master %.1f%%, backup %.1f%% of a core", fl, o.Instances, o.Advert, 100*row.MasterCPU, 100*row.BackupCPU)

	for round := range o.Failovers {
		took, missing, err := failover(nodes, vips)
		if err != nil {
			return nil, err
		}
		row.FailoverMS = append(row.FailoverMS, took...)
		row.Missing += missing
		logf("%s: failover %d: %d instances, median %.0fms, max %.0fms, %d missing", fl, round+1, len(took), median(took), slices.Max(append(took, 0)), missing)
		if err := nodes[0].Thaw(); err != nil {
			return nil, err
		}
		if !WaitFor(30*time.Second, converged) {
			// A finding, not a failure of the bench: reported, and no
			// more failovers of this flavor.
			row.Unsettled = fmt.Sprintf("after failover %d lb1 did not take its VIPs back within 30s of the thaw: lb1 holds %d, lb2 %d",
				round+1, holds(nodes[0]), holds(nodes[1]))
			logf("%s: %s", fl, row.Unsettled)
			break
		}
		time.Sleep(time.Second)
	}
	if len(row.FailoverMS) > 0 {
		ms := slices.Sorted(slices.Values(row.FailoverMS))
		row.Median, row.Max = median(ms), ms[len(ms)-1]
		row.P99 = ms[min(len(ms)-1, (len(ms)*99+99)/100-1)]
	}
	return row, nil
}

// failover freezes nodes[0] and returns, for each VIP, the time until
// nodes[1] added it (from netlink's notifications in its namespace), and
// how many it did not add within 10s. nodes[0] stays frozen.
func failover(nodes [2]*Node, vips []netip.Addr) (took []float64, missing int, err error) {
	updates := make(chan netlink.AddrUpdate, 4*len(vips))
	done := make(chan struct{})
	defer close(done)
	ns := nodes[1].Host.ns
	if err := netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{Namespace: &ns}); err != nil {
		return nil, 0, fmt.Errorf("subscribe to lb2's addresses: %w", err)
	}
	want := map[netip.Addr]bool{}
	for _, v := range vips {
		want[v] = true
	}
	t0 := time.Now()
	if err := nodes[0].Freeze(); err != nil {
		return nil, 0, err
	}
	timeout := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case u := <-updates:
			a, ok := netip.AddrFromSlice(u.LinkAddress.IP)
			if !ok || !u.NewAddr || !want[a.Unmap()] {
				continue
			}
			delete(want, a.Unmap())
			took = append(took, float64(time.Since(t0).Microseconds())/1000)
		case <-timeout:
			return took, len(want), nil
		}
	}
	return took, 0, nil
}

// WriteBenchControl writes rep as dir/control.json and prints its tables.
func WriteBenchControl(w io.Writer, dir string, rep *CtlReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "control.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "reload of %d services, %d backends x %d servers (%s), probe %d/s keep-alive + %d/s new connections\n",
		rep.Services, rep.Backends, rep.Servers, rep.Health, rep.Rate, rep.Rate)
	fmt.Fprintln(tw, "flavor\thow\tstart s\tapply ms median (min..max)\tfailed/sent\tRSS before\tRSS after\tpeak\tCPU s")
	for _, r := range rep.Reload {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.0f (%.0f..%.0f)\t%d/%d\t%d MiB\t%d MiB\t%d MiB\t%.1f\n", r.Flavor, r.How, r.StartS,
			r.ApplyMedian, r.Apply.Min, r.Apply.Max, r.Failed, r.Sent, r.RSSBefore>>20, r.RSSAfter>>20, r.PeakRSS>>20, r.CPUS)
	}
	if len(rep.VRRP) > 0 {
		fmt.Fprintln(tw, "\nVRRP\tinstances\tadvert\tCPU master\tCPU backup\tfailover ms median\tp99\tmax\tmissing\tunsettled")
		for _, r := range rep.VRRP {
			fmt.Fprintf(tw, "%s\t%d\t%.0fms\t%.1f%%\t%.1f%%\t%.0f\t%.0f\t%.0f\t%d\t%s\n", r.Flavor, r.Instances, r.AdvertMS,
				100*r.MasterCPU, 100*r.BackupCPU, r.Median, r.P99, r.Max, r.Missing, r.Unsettled)
		}
	}
	return errors.Join(tw.Flush())
}
