package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/internal/procnet"
)

// TestMain doubles as the listener process of BenchmarkChecks1000 when
// started with HALB_BENCH_LISTENER set: it accepts and closes connections
// on loopback until its stdin closes.
func TestMain(m *testing.M) {
	if os.Getenv("HALB_BENCH_LISTENER") == "" {
		os.Exit(m.Run())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		if os.Getenv("HALB_BENCH_LISTENER") != "http" {
			c.Close()
			continue
		}
		go func() { // an HTTP server's answer to one request
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 0, 1024)
			for !strings.Contains(string(buf), "\r\n\r\n") && len(buf) < cap(buf) {
				n, err := c.Read(buf[len(buf):cap(buf)])
				buf = buf[:len(buf)+n]
				if err != nil {
					return
				}
			}
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"))
		}()
	}
}

// activeOpens is the machine's count of TCP connects started (Tcp
// ActiveOpens in /proc/net/snmp): the checks, as neither checker lets the
// listener accept (see tcpChecker).
func activeOpens(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		b.Fatal(err)
	}
	active, _, err := procnet.TCPOpens(string(data))
	if err != nil {
		b.Fatal(err)
	}
	return active
}

// BenchmarkChecks1000 runs 1000 TCP checks a second (1000 servers, 1s
// interval) for 5s against a loopback listener in another process and
// reports the CPU time of this process, the checker's alone, as a share of
// one core, and the connects per second; then the same for HAProxy
// checking the same servers. make bench prints it (its -bench Checks1000
// runs BenchmarkChecks10000 too).
func BenchmarkChecks1000(b *testing.B) { benchChecks(b, 1000, "tcp") }

// BenchmarkChecks10000 is BenchmarkChecks1000 with 10 000 servers.
func BenchmarkChecks10000(b *testing.B) { benchChecks(b, 10000, "tcp") }

// BenchmarkChecks1000HTTP is BenchmarkChecks1000 with HTTP checks (GET /,
// status 200; HAProxy's option httpchk and http-check expect status 200)
// against a listener that answers each request and closes.
func BenchmarkChecks1000HTTP(b *testing.B) { benchChecks(b, 1000, "http") }

// benchChecks checks n servers every second, with halb and then HAProxy.
// The connects per second are the machine's (Tcp ActiveOpens), so other
// work on the machine adds to them; halb's own count of checks is in
// checks/s.
func benchChecks(b *testing.B, n int, check string) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "HALB_BENCH_LISTENER="+check)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("listener process: %v", err)
	}
	addr := strings.TrimSpace(line)
	if _, _, err := net.SplitHostPort(addr); err != nil {
		b.Fatalf("listener process: %q", line)
	}
	var y strings.Builder
	fmt.Fprintf(&y, "node: {name: lb1}\nbackends:\n  - name: many\n    health: {check: %s, interval: 1s, timeout: 500ms}\n    servers:\n", check)
	for i := range n {
		fmt.Fprintf(&y, "      - {name: s%d, address: \"%s\"}\n", i, addr)
	}
	cfg, err := config.Parse("halb.yaml", []byte(y.String()))
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		c := New(slog.New(slog.DiscardHandler), nil)
		c.Apply(cfg)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		time.Sleep(time.Second) // the first round, all at once
		checks0 := checksDone(b, c)
		cpu0, t0, opens0 := cpuTime(), time.Now(), activeOpens(b)
		time.Sleep(5 * time.Second)
		cpu, wall, opens := cpuTime()-cpu0, time.Since(t0), activeOpens(b)-opens0
		checks := checksDone(b, c) - checks0
		cancel()
		<-done
		if checks == 0 {
			b.Fatal("no checks ran")
		}
		b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core")
		b.ReportMetric(float64(checks)/wall.Seconds(), "checks/s")
		b.ReportMetric(float64(opens)/wall.Seconds(), "connects/s")
		if share, rate, err := haproxyChecks(b, addr, n, check); err != nil {
			b.Logf("no HAProxy reference: %v", err)
		} else {
			b.ReportMetric(share, "haproxy-%core")
			b.ReportMetric(rate, "haproxy-connects/s")
		}
	}
}

// checksDone is the number of checks c ran, after it checks that every
// server is up.
func checksDone(b *testing.B, c *Component) int64 {
	var checks int64
	for _, be := range c.Status().([]BackendHealth) {
		for _, s := range be.Servers {
			checks += s.Checks
			if s.State != "up" {
				b.Fatalf("server %s is %s: %s", s.Name, s.State, s.LastError)
			}
		}
	}
	return checks
}

// haproxyChecks runs HAProxy (the reference, when installed) with the same
// n servers checked every second against the same listener, and returns
// its CPU use over 5s as a share of one core and the machine's connects
// per second meanwhile. Every server must be up at the end (HAProxy's
// stats socket says).
func haproxyChecks(b *testing.B, addr string, n int, check string) (share, rate float64, err error) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		return 0, 0, err
	}
	var cfg strings.Builder
	cfg.WriteString("global\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 500ms\n  timeout client 1s\n  timeout server 1s\n  timeout check 500ms\n")
	dir := b.TempDir()
	// HAProxy will not run without a listener: one on a unix socket.
	fmt.Fprintf(&cfg, "frontend f\n  bind unix@%s/f.sock\n  default_backend many\n", dir)
	fmt.Fprintf(&cfg, "listen stats\n  bind unix@%s/stats.sock\n  mode http\n  stats enable\n  stats uri /\n", dir)
	cfg.WriteString("backend many\n  default-server check inter 1s\n")
	if check == "http" {
		cfg.WriteString("  option httpchk GET /\n  http-check expect status 200\n")
	}
	for i := range n {
		fmt.Fprintf(&cfg, "  server s%d %s\n", i, addr)
	}
	path := dir + "/haproxy.cfg"
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		return 0, 0, err
	}
	var out strings.Builder
	cmd := exec.Command(bin, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	time.Sleep(2 * time.Second) // HAProxy spreads its first round over inter
	select {
	case err := <-exited:
		exited <- err
		return 0, 0, fmt.Errorf("haproxy exited: %v: %s", err, out.String())
	default:
	}
	cpu0, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	t0, opens0 := time.Now(), activeOpens(b)
	time.Sleep(5 * time.Second)
	opens := activeOpens(b) - opens0
	cpu1, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	wall := time.Since(t0).Seconds()
	if up, err := haproxyUp(dir + "/stats.sock"); err != nil {
		return 0, 0, err
	} else if up != n {
		return 0, 0, fmt.Errorf("haproxy has %d of %d servers up", up, n)
	}
	return 100 * (cpu1 - cpu0).Seconds() / wall, float64(opens) / wall, nil
}

// haproxyUp counts the servers up in HAProxy's CSV stats at sock.
func haproxyUp(sock string) (int, error) {
	hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://haproxy/;csv")
	if err != nil {
		return 0, fmt.Errorf("haproxy stats: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("haproxy stats: %w", err)
	}
	up := 0
	for line := range strings.SplitSeq(string(body), "\n") {
		if f := strings.Split(line, ","); len(f) > 17 && f[0] == "many" && f[1] != "BACKEND" && f[17] == "UP" {
			up++
		}
	}
	return up, nil
}

// procCPU is the user and system time of process pid (from /proc, in
// clock ticks of 10ms).
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) in parentheses:
	// utime and stime are the 12th and 13th of them.
	_, rest, ok := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("unreadable %s", data)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unreadable %s", data)
	}
	return time.Duration(u+s) * 10 * time.Millisecond, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
