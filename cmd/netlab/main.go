// Command netlab drives halb's network-namespace lab by hand (root only).
//
//	netlab down [-all]          remove lab namespaces left by dead runs (-all: every lab namespace)
//	netlab demo [-flavor F]     the classic topology under steady client load, with keys for faults
//	netlab bench [-rows all]    wrk against a backend directly and through each proxy; out/bench/report.json
//	netlab benchctl [-out D]    reload of 1000 backends x 10 servers under load, 100 VRRP instances at 50ms; D/control.json
//	netlab backend ADDR         an HTTP backend on a loopback address (no root; the daemon demo's)
//	netlab tlsload URL          the bench's TLS handshake client (a new TLS connection a request)
//
// The scenarios themselves are Go tests: `make netlab`.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

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
	case "benchctl":
		err = benchctl(os.Args[2:])
	case "backend":
		err = backend(os.Args[2:])
	case "tlsload":
		err = tlsload(os.Args[2:])
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
  netlab demo [-flavor halb|reference] [-halbd bin/halbd] [-keep]
  netlab bench [-rows all] [-d 5s] [-rounds 5] [-c 64] [-mem 9000] [-scrape 100ms]
               [-rowd 3s] [-rowrounds 3] [-slow 1000] [-perf DIR] [-out out/bench]
      rows: `+strings.Join(netlab.BenchRows, ",")+`
  netlab benchctl [-halbd bin/halbd] [-backends 1000] [-servers 10] [-reloads 10] [-rate 200] [-instances 100] [-advert 50ms] [-failovers 3] [-out out/bench]
  netlab backend [-name be1] 127.0.0.1:PORT
  netlab tlsload [-c 64] [-d 3s] [-resume] https://HOST[:PORT]/PATH
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
	memRounds := fs.Int("memrounds", 3, "times each memory figure is taken, each in a fresh topology (the median is reported)")
	scrape := fs.Duration("scrape", 100*time.Millisecond, "how often the scrape rows GET /metrics")
	rowList := fs.String("rows", "all", "rows to run, comma-separated: "+strings.Join(netlab.BenchRows, ","))
	rowD := fs.Duration("rowd", 3*time.Second, "duration of each wrk run of the conn, size, slow and scale rows")
	rowRounds := fs.Int("rowrounds", 3, "wrk runs per target of the conn, size, slow and scale rows")
	slow := fs.Int("slow", 1000, "slow clients held in the slow row")
	perfDir := fs.String("perf", "", "perf record every round of the tls row's targets into this directory")
	out := fs.String("out", "out/bench", "report directory")
	fs.Parse(args)
	rows, err := netlab.ParseBenchRows(*rowList)
	if err != nil {
		return err
	}
	return inLab(func(l *netlab.Lab) error {
		rep, err := netlab.Bench(l, netlab.BenchOptions{Duration: *d, Connections: *conns, MemConns: *memConns, MemRounds: *memRounds, Rounds: *rounds, ScrapeEvery: *scrape,
			Rows: rows, RowDuration: *rowD, RowRounds: *rowRounds, SlowClients: *slow, PerfDir: *perfDir}, stderrf)
		if err != nil {
			return err
		}
		rep.Command = benchCommand(os.Args)
		if err := netlab.WriteBench(os.Stdout, *out, rep); err != nil {
			return err
		}
		fmt.Printf("report: %s/report.json\n", *out)
		return nil
	})
}

// inLab runs f in a new lab that is removed after it, or when a signal
// ends the command. The lab's directory goes with it when f succeeds; when
// f fails it is kept (the daemons' logs are there) and the error names it.
func inLab(f func(l *netlab.Lab) error) (err error) {
	l, err := openLab()
	if err != nil {
		return err
	}
	defer func() {
		kept, cerr := closeLab(l, err != nil)
		err = errors.Join(err, cerr)
		if kept {
			err = fmt.Errorf("%w (the lab's files and logs are kept in %s)", err, l.Dir)
		}
	}()
	stop := closeOnSignal(l)
	defer stop()
	return f(l)
}

// openLab makes a lab in a directory of its own.
func openLab() (*netlab.Lab, error) {
	dir, err := os.MkdirTemp("", "netlab-")
	if err != nil {
		return nil, err
	}
	l, err := netlab.NewLab(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return l, nil
}

// closeLab tears l down and removes its directory, unless keep is set or
// the teardown failed; it returns the teardown's error and whether the
// directory was kept.
func closeLab(l *netlab.Lab, keep bool) (kept bool, err error) {
	err = l.Close()
	if keep || err != nil {
		return true, err
	}
	os.RemoveAll(l.Dir)
	return false, nil
}

// stderrf is the benches' progress log.
func stderrf(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }

func benchctl(args []string) error {
	fs := flag.NewFlagSet("benchctl", flag.ExitOnError)
	var o netlab.CtlOptions
	fs.IntVar(&o.Backends, "backends", 1000, "backends (each the default backend of a service of its own)")
	fs.IntVar(&o.Servers, "servers", 10, "servers per backend")
	fs.StringVar(&o.Health, "health", "check: tcp, interval: 30s, timeout: 1s", "the backends' health mapping (YAML flow, no braces)")
	fs.IntVar(&o.Reloads, "reloads", 10, "changed configs each flavor applies under load (-1: no reload part)")
	fs.StringVar(&netlab.HalbdPath, "halbd", netlab.HalbdPath, "the halbd halb nodes run (halbctl beside it)")
	fs.IntVar(&o.Rate, "rate", 200, "probe requests/s on keep-alive connections, and as many on new ones")
	fs.IntVar(&o.Instances, "instances", 100, "VRRP instances on each of two nodes (-1: no VRRP part)")
	fs.DurationVar(&o.Advert, "advert", 50*time.Millisecond, "VRRP advert interval")
	fs.DurationVar(&o.CPUWindow, "cpu-window", 20*time.Second, "how long the VRRP daemons' CPU is measured")
	fs.IntVar(&o.Failovers, "failovers", 3, "times each flavor's VRRP master is frozen")
	out := fs.String("out", "out/bench", "report directory (control.json)")
	fs.Parse(args)
	return inLab(func(l *netlab.Lab) error {
		rep, err := netlab.BenchControl(l, o, stderrf)
		if err != nil {
			return err
		}
		rep.Command = benchCommand(os.Args)
		if err := netlab.WriteBenchControl(os.Stdout, *out, rep); err != nil {
			return err
		}
		fmt.Printf("report: %s/control.json\n", *out)
		return nil
	})
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

// tlsload runs the bench's TLS handshake client (netlab.TLSLoad) and
// prints its wrk-like report.
func tlsload(args []string) error {
	fs := flag.NewFlagSet("tlsload", flag.ExitOnError)
	c := fs.Int("c", 64, "concurrent clients")
	d := fs.Duration("d", 3*time.Second, "duration")
	resume := fs.Bool("resume", false, "one session cache for all clients (resumed handshakes)")
	fs.Parse(args)
	if fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	return netlab.TLSLoad(netlab.TLSLoadOptions{URL: fs.Arg(0), Connections: *c, Duration: *d, Resume: *resume}, os.Stdout)
}
