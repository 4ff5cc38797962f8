// Command netlab drives halb's network-namespace lab by hand (root only).
//
//	netlab down [-all]          remove lab namespaces left by dead runs (-all: every lab namespace)
//	netlab demo [-flavor F]     the classic topology under steady client load, with keys for faults
//	netlab bench [-d 5s]        wrk against a backend directly and through each proxy; out/bench/report.json
//
// The scenarios themselves are Go tests: `make netlab`.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"halb/netlab"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "down":
		err = down(os.Args[2:])
	case "demo":
		err = demo(os.Args[2:])
	case "bench":
		err = bench(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "netlab:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  netlab down [-all]
  netlab demo [-flavor halb|reference] [-halbd bin/halbd]
  netlab bench [-d 5s] [-rounds 5] [-c 64] [-mem 9000] [-out out/bench]
`)
	os.Exit(2)
}

func down(args []string) error {
	fs := flag.NewFlagSet("down", flag.ExitOnError)
	all := fs.Bool("all", false, "remove every lab namespace, also of runs still going")
	fs.Parse(args)
	removed, err := netlab.Down(*all)
	for _, n := range removed {
		fmt.Println("removed", n)
	}
	if len(removed) == 0 && err == nil {
		fmt.Println("nothing to remove")
	}
	return err
}

func bench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	d := fs.Duration("d", 5*time.Second, "duration of each wrk run")
	rounds := fs.Int("rounds", 5, "wrk runs per target, the targets taking turns; the report gives medians and spreads")
	conns := fs.Int("c", 64, "wrk connections")
	memConns := fs.Int("mem", 9000, "client connections held through each HTTP proxy for the memory figures (-1: skip)")
	out := fs.String("out", "out/bench", "report directory")
	fs.Parse(args)
	l, err := netlab.NewLab(mustTemp())
	if err != nil {
		return err
	}
	defer l.Close()
	stop := closeOnSignal(l)
	defer stop()
	rep, err := netlab.Bench(l, netlab.BenchOptions{Duration: *d, Connections: *conns, MemConns: *memConns, Rounds: *rounds}, func(f string, a ...any) {
		fmt.Fprintf(os.Stderr, f+"\n", a...)
	})
	if err != nil {
		return err
	}
	rep.Command = benchCommand(os.Args)
	if err := netlab.WriteBench(os.Stdout, *out, rep); err != nil {
		return err
	}
	fmt.Printf("report: %s/report.json\n", *out)
	return nil
}

// benchCommand is the command line for the report, with the make target
// when make ran it (the bench target is the only one that runs it).
func benchCommand(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = a
		if a == "" || strings.ContainsAny(a, " \t'\"$\\") {
			quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	cmd := strings.Join(quoted, " ")
	if os.Getenv("MAKELEVEL") != "" {
		cmd = "make bench: " + cmd
	}
	return cmd
}

func mustTemp() string {
	d, err := os.MkdirTemp("", "netlab-")
	if err != nil {
		panic(err)
	}
	return d
}

// closeOnSignal tears the lab down on SIGINT/SIGTERM, then exits.
func closeOnSignal(l *netlab.Lab) func() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		if _, ok := <-ch; ok {
			l.Close()
			os.Exit(130)
		}
	}()
	return func() { signal.Stop(ch); close(ch) }
}

func demo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	flavor := fs.String("flavor", "halb", "node flavor: halb or reference (keepalived+HAProxy)")
	halbd := fs.String("halbd", "bin/halbd", "halbd binary for -flavor halb")
	fs.Parse(args)
	if netlab.Flavor(*flavor) == netlab.FlavorHalb {
		netlab.HalbdPath = *halbd
	}
	dir := mustTemp()
	l, err := netlab.NewLab(dir)
	if err != nil {
		return err
	}
	defer l.Close()
	stop := closeOnSignal(l)
	defer stop()

	fmt.Printf("building the classic topology (%s nodes): client, lb1 (MASTER), lb2 (BACKUP), be1, be2 ...\n", *flavor)
	c, err := netlab.NewClassic(l, netlab.ClassicOptions{Flavor: netlab.Flavor(*flavor)})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.WaitConverged(20 * time.Second); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	probe := c.StartProbe(ctx, false)
	defer probe.Stop()

	fmt.Printf(`up. The client sends 200 requests/s to http://%s/ (logs in %s).
keys: m kill lb1's daemons  s restart lb1's daemons  l lb1 link down/up
      p partition lb1/lb2 / heal  b kill/restore backend be1  q quit
`, netlab.ClassicVIP, dir)

	keys := make(chan byte)
	restore := readKeys(keys)
	defer restore()

	var heal func() error
	linkDown, beDown := false, false
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := probe.Snapshot()
	for {
		select {
		case <-tick.C:
			s := probe.Snapshot()
			status := fmt.Sprintf("VIP holders %-10s client ARP→%-4s | last second: %3d ok %3d failed | last answer %s via %s",
				strings.Join(c.VIPHolders(), ","), c.ARPOwner(), s.OK-last.OK, s.Failed-last.Failed, s.LastBackend, s.LastNode)
			if s.LastErr != "" && s.Failed > last.Failed {
				status += " | error: " + s.LastErr
			}
			fmt.Print(status + "\r\n")
			last = s
		case k := <-keys:
			var msg string
			var err error
			switch k {
			case 'm':
				msg, err = "killed lb1's daemons (SIGKILL)", c.LB[0].Kill()
			case 's':
				msg, err = "restarted lb1's daemons", c.LB[0].Start()
			case 'l':
				linkDown = !linkDown
				msg, err = fmt.Sprintf("lb1 eth0 down=%v", linkDown), c.LB[0].Host.SetLink("eth0", !linkDown)
			case 'p':
				if heal == nil {
					heal, err = netlab.Partition(c.LB[0].Host, c.LB[1].Host)
					msg = "partitioned lb1 from lb2"
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
			case 'q', 3:
				return nil
			default:
				continue
			}
			if err != nil {
				msg += ": " + err.Error()
			}
			fmt.Printf(">>> %s\r\n", msg)
		}
	}
}

// readKeys delivers key presses: raw single keys on a terminal, else the
// first byte of each line.
func readKeys(out chan<- byte) (restore func()) {
	fd := int(os.Stdin.Fd())
	restore = func() {}
	if term.IsTerminal(fd) {
		if st, err := term.MakeRaw(fd); err == nil {
			restore = func() { term.Restore(fd, st) }
		}
	}
	go func() {
		r := bufio.NewReader(os.Stdin)
		for {
			b, err := r.ReadByte()
			if err != nil {
				out <- 'q'
				return
			}
			if b != '\n' && b != '\r' {
				out <- b
			}
		}
	}()
	return restore
}
