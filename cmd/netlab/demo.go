package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"halb/appliance/health"
	"halb/netlab"
)

// legendEvery is how many status lines go by between two prints of the key
// legend, so that it stays on a 24-line screen.
const legendEvery = 10

const legend = "keys: m kill lb1's daemons | s restart them | l lb1 link down/up | p partition lb1/lb2, heal | b be1 down/up | c lb1's console | q quit"

// demo runs the classic topology under client load and prints a status line
// a second; keys inject faults. The lab's log directory is removed on a
// clean exit (kept with -keep, and always after a failure: its path is
// printed).
func demo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	flavor := fs.String("flavor", "halb", "node flavor: halb or reference (keepalived+HAProxy)")
	halbd := fs.String("halbd", "bin/halbd", "halbd binary for -flavor halb")
	keep := fs.Bool("keep", false, "keep the lab's log directory after a clean exit")
	console := fs.String("console", "bin/halb-console", "halb-console binary, run on lb1's socket by the key c (flavor halb)")
	fs.Parse(args)
	if netlab.Flavor(*flavor) == netlab.FlavorHalb {
		netlab.HalbdPath = *halbd
	}

	// Keys typed before the demo is ready are neither echoed nor acted on.
	kb := openKeyboard(os.Stdin)
	l, err := openLab()
	if err != nil {
		kb.restore()
		return err
	}
	dir := l.Dir
	var closeOnce sync.Once
	var failed bool
	finish := func() {
		closeOnce.Do(func() {
			kb.restore()
			kept, err := closeLab(l, failed || *keep)
			if err != nil {
				fmt.Fprintln(os.Stderr, "netlab demo: teardown:", err)
			}
			if kept {
				fmt.Fprintf(os.Stderr, "netlab demo: logs kept in %s\n", dir)
			}
		})
	}
	defer finish()

	// A signal during start-up tears down at once; afterwards it ends the
	// loop below like q.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	quit := make(chan struct{})
	started := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		select {
		case <-started:
			close(quit)
		default:
			finish()
			os.Exit(130)
		}
	}()

	fmt.Printf("building the classic topology (%s nodes): client, lb1 (MASTER), lb2 (BACKUP), be1, be2 ...\n", *flavor)
	c, err := netlab.NewClassic(l, netlab.ClassicOptions{Flavor: netlab.Flavor(*flavor)})
	if err != nil {
		failed = true
		return err
	}
	defer c.Close()
	if err := c.WaitConverged(20 * time.Second); err != nil {
		failed = true
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	probe := c.StartProbe(ctx, false)
	defer probe.Stop()

	fmt.Printf("up. The client sends 200 requests/s to http://%s/ (logs in %s, removed on exit unless -keep).\n", netlab.ClassicVIP, dir)
	fmt.Println("Each line: who holds the VIP (a node whose daemons were killed keeps a stale copy on its link: nothing answers there),")
	fmt.Println("where the client's ARP entry points, the last second's requests, who answered, and each node's checks of be1 and be2.")
	fmt.Println(legend)
	keys := make(chan byte)
	kb.start(keys)
	close(started)

	var heal func() error
	linkDown, beDown := false, false
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := probe.Snapshot()
	lines := 0
	for {
		select {
		case <-quit:
			return nil
		case <-tick.C:
			s := probe.Snapshot()
			fmt.Println(statusLine(c, s, last))
			last = s
			if lines++; lines%legendEvery == 0 {
				fmt.Println(legend)
			}
		case k := <-keys:
			var msg string
			var err error
			switch k {
			case 'c':
				msg, err = openConsole(c, netlab.Flavor(*flavor), *console)
				fmt.Println(legend)
			case 'm':
				msg, err = "killed lb1's daemons (SIGKILL: its VIP stays on its link, stale)", c.LB[0].Kill()
			case 's':
				msg, err = "restarted lb1's daemons", c.LB[0].Start()
			case 'l':
				linkDown = !linkDown
				msg, err = fmt.Sprintf("lb1 eth0 down=%v", linkDown), c.LB[0].Host.SetLink("eth0", !linkDown)
			case 'p':
				if heal == nil {
					heal, err = netlab.Partition(c.LB[0].Host, c.LB[1].Host)
					msg = "partitioned lb1 from lb2 (each becomes MASTER: both hold the VIP)"
				} else {
					err, heal, msg = heal(), nil, "healed the partition"
				}
			case 'b':
				beDown = !beDown
				if beDown {
					c.Backends[0].SetMode(netlab.ModeRefuse)
					msg = "be1 refuses connections"
				} else {
					c.Backends[0].SetMode(netlab.ModeOK)
					msg = "be1 serves again"
				}
			case 'q':
				return nil
			}
			kb.next()
			if msg == "" {
				continue
			}
			if err != nil {
				msg += ": " + err.Error()
			}
			fmt.Printf(">>> %s\n", msg)
		}
	}
}

// openConsole runs halb-console against lb1's control socket on this
// terminal until it quits (ctrl+c); the status lines wait meanwhile (the
// client's load and the nodes go on). The console's alternate screen
// leaves the demo's lines as they were.
func openConsole(c *netlab.Classic, flavor netlab.Flavor, bin string) (string, error) {
	if flavor != netlab.FlavorHalb {
		return "the console is halb's: run the demo with -flavor halb", nil
	}
	cmd := exec.Command(bin, "-socket", filepath.Join(c.LB[0].Dir, "halb.sock"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "lb1's console", err
	}
	return "back from lb1's console", nil
}

// statusLine is the demo's line for one second: s against last.
func statusLine(c *netlab.Classic, s, last netlab.ProbeStats) string {
	var live, stale []string
	for _, n := range c.LB {
		if !n.HoldsVIP(c.VIP) {
			continue
		}
		if n.Running() {
			live = append(live, n.Host.Name)
		} else {
			stale = append(stale, n.Host.Name)
		}
	}
	vip := "VIP on " + orNone(strings.Join(live, ","))
	if len(live) > 1 {
		vip += " (both MASTER)"
	}
	if len(stale) > 0 {
		vip += fmt.Sprintf(" (%s: stale, daemons dead)", strings.Join(stale, ","))
	}
	line := fmt.Sprintf("%s  ARP→%-4s | 1s: %3d ok %3d failed | last %s via %s | checks %s",
		vip, c.ARPOwner(), s.OK-last.OK, s.Failed-last.Failed, orNone(s.LastBackend), orNone(s.LastNode), checks(c))
	if s.LastErr != "" && s.Failed > last.Failed {
		line += " | error: " + s.LastErr
	}
	return line
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// checks says what each node's health checks think of be1 and be2, e.g.
// "lb1 be1 up be2 up, lb2 be1 DOWN be2 up"; "-" for a node whose daemons
// are not running.
func checks(c *netlab.Classic) string {
	parts := make([]string, len(c.LB))
	var wg sync.WaitGroup
	for i, n := range c.LB {
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[i] = n.Host.Name + " " + nodeChecks(n)
		}()
	}
	wg.Wait()
	return strings.Join(parts, ", ")
}

// nodeChecks is one node's view of the http backend's servers.
func nodeChecks(n *netlab.Node) string {
	if !n.Running() {
		return "-"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var states map[string]string
	var err error
	switch n.Flavor {
	case netlab.FlavorHalb:
		states, err = halbChecks(ctx, n)
	default:
		states, err = haproxyChecks(ctx, netlab.RefPaths{Dir: n.Dir}.HAProxySocket())
	}
	if err != nil {
		return "?"
	}
	var out []string
	for _, sv := range []string{"be1", "be2"} {
		st, ok := states[sv]
		switch {
		case !ok:
			st = "?"
		case st == "up":
		case st == "down":
			st = "DOWN"
		}
		out = append(out, sv+" "+st)
	}
	return strings.Join(out, " ")
}

// halbChecks reads the check state of backend "web"'s servers from halbd's
// status: name → up, down.
func halbChecks(ctx context.Context, n *netlab.Node) (map[string]string, error) {
	cl := n.API()
	defer cl.Close()
	st, err := cl.Status(ctx)
	if err != nil {
		return nil, err
	}
	var bes []health.BackendHealth
	if err := json.Unmarshal(st.Backends, &bes); err != nil {
		return nil, fmt.Errorf("halbd status: backends: %w", err)
	}
	out := map[string]string{}
	for _, be := range bes {
		if be.Name != "web" {
			continue
		}
		for _, sv := range be.Servers {
			out[sv.Name] = sv.State
		}
	}
	return out, nil
}

// haproxyChecks reads the check state of backend "web"'s servers from
// HAProxy's stats socket (`show stat`): name → up, down (HAProxy's status
// column: "UP", "UP 1/3" going down, "DOWN", "DOWN 1/2" coming up, "MAINT").
func haproxyChecks(ctx context.Context, sock string) (map[string]string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, "show stat\n"); err != nil {
		return nil, fmt.Errorf("haproxy stats %s: %w", sock, err)
	}
	r := csv.NewReader(bufio.NewReader(conn))
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("haproxy stats %s: %w", sock, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.TrimPrefix(h, "# ")] = i
	}
	px, sv, status := col["pxname"], col["svname"], col["status"]
	if status == 0 {
		return nil, fmt.Errorf("haproxy stats %s: no status column", sock)
	}
	out := map[string]string{}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("haproxy stats %s: %w", sock, err)
		}
		if len(rec) <= status || rec[px] != "web" {
			continue
		}
		f := strings.Fields(rec[status])
		if len(f) > 0 {
			out[rec[sv]] = strings.ToLower(f[0])
		}
	}
}

// keyboard reads the demo's keys from stdin. On a terminal it turns echo
// and line buffering off from the start, so keys typed while the lab is
// being built are neither shown nor acted on: start discards them. Output
// processing stays on, and so does ^C (a signal). It reads the next key
// only once the last one was handled (next), so a program the demo runs on
// the terminal (the console) gets the keys typed while it runs.
type keyboard struct {
	f       *os.File
	fd      int
	saved   *unix.Termios
	handled chan struct{}
}

func openKeyboard(f *os.File) *keyboard {
	k := &keyboard{f: f, fd: int(f.Fd()), handled: make(chan struct{})}
	t, err := unix.IoctlGetTermios(k.fd, unix.TCGETS)
	if err != nil {
		return k // not a terminal
	}
	saved := *t
	t.Lflag &^= unix.ECHO | unix.ICANON
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if unix.IoctlSetTermios(k.fd, unix.TCSETS, t) == nil {
		k.saved = &saved
	}
	return k
}

// start discards whatever was typed so far (on a terminal) and delivers
// each key from now on; the end of input counts as q.
func (k *keyboard) start(out chan<- byte) {
	if k.saved != nil {
		unix.IoctlSetInt(k.fd, unix.TCFLSH, unix.TCIFLUSH)
	}
	go func() {
		var b [1]byte
		for {
			// One byte at a time, unbuffered: what the demo has not asked
			// for stays in the terminal for a program it runs.
			if n, err := k.f.Read(b[:]); err != nil || n == 0 {
				out <- 'q'
				return
			}
			if b[0] != '\n' && b[0] != '\r' {
				out <- b[0]
				<-k.handled
			}
		}
	}()
}

// next lets the reader read the key after the one just delivered.
func (k *keyboard) next() { k.handled <- struct{}{} }

// restore puts the terminal back as it was.
func (k *keyboard) restore() {
	if k.saved != nil {
		unix.IoctlSetTermios(k.fd, unix.TCSETS, k.saved)
	}
}
