package logs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// checkMsg checks the RFC 5424 header halb sends for a line of stream at
// severity sev from facility local3 (19).
func checkMsg(t *testing.T, raw []byte, stream string, sev int) syslogMsg {
	t.Helper()
	m, err := parse5424(raw)
	if err != nil {
		t.Fatalf("not RFC 5424: %v: %q", err, raw)
	}
	if m.pri != 19*8+sev {
		t.Errorf("PRI %d, want %d (local3.%d)", m.pri, 19*8+sev, sev)
	}
	if m.host != "lb1" || m.app != "halbtest" || m.procid != strconv.Itoa(os.Getpid()) || m.msgid != stream || m.sd != "-" {
		t.Errorf("header host=%q app=%q procid=%q msgid=%q sd=%q", m.host, m.app, m.procid, m.msgid, m.sd)
	}
	if d := time.Since(m.timestamp); d < 0 || d > time.Minute {
		t.Errorf("timestamp %v is %v from now", m.timestamp, d)
	}
	return m
}

func TestSyslog(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			var messages func() [][]byte
			var addr string
			if transport == "udp" {
				r := newUDPReceiver(t)
				messages, addr = r.messages, r.addr()
			} else {
				r := newTCPReceiver(t, "127.0.0.1:0", false)
				messages, addr = r.messages, r.addr()
			}
			cfg := syslogTarget("s", transport, addr)
			cfg.Streams = []string{"access", "daemon"}
			opts, _ := testOptions(t)
			m := newManager(t, []config.LogTarget{cfg}, opts)
			log := slog.New(m.Handler(slog.NewTextHandler(&testutil.SyncBuffer{}, nil)))

			m.Access(httpRecord(1))
			log.Warn("vrrp state changed", "instance", "vi1", "to", "MASTER")
			log.Error("check failed", "err", "connection refused")
			testutil.WaitFor(t, "3 messages received", func() bool { return len(messages()) >= 3 })
			msgs := messages()
			if len(msgs) != 3 {
				t.Fatalf("%d messages, want 3", len(msgs))
			}
			got := checkMsg(t, msgs[0], "access", 6)
			if want := string(appendAccess(nil, httpRecord(1))); got.text != want {
				t.Errorf("MSG\n got %s\nwant %s", got.text, want)
			}
			// The access fields, as a reader of HAProxy's lines splits them.
			f := strings.SplitN(got.text, " ", 14)
			for i, want := range map[int]string{0: "10.0.0.5:51234", 2: "web", 3: "www/web1", 4: "0/0/1/3/5",
				5: "200", 6: "512", 9: "----", 10: "-/-/-/-/0", 12: "{www.example.com}", 13: `"GET /item/1 HTTP/1.1"`} {
				if len(f) != 14 || f[i] != want {
					t.Errorf("access field %d of %q is not %q", i, got.text, want)
				}
			}
			if got := checkMsg(t, msgs[1], "daemon", 4); got.text != "vrrp state changed instance=vi1 to=MASTER" {
				t.Errorf("daemon MSG %q", got.text)
			}
			if got := checkMsg(t, msgs[2], "daemon", 3); got.text != `check failed err="connection refused"` {
				t.Errorf("daemon MSG %q", got.text)
			}
			// The writer counts a line after its write returned: the
			// receiver may have it a moment before the count moves.
			testutil.WaitFor(t, "3 lines counted written", func() bool { return status(t, m, "s").Written >= 3 })
			s := status(t, m, "s")
			if s.Written != 3 || s.Dropped != 0 || s.Where != transport+"://"+addr {
				t.Errorf("status %+v", s)
			}
			if transport == "tcp" && !s.Connected {
				t.Errorf("tcp target not connected: %+v", s)
			}
		})
	}
}

// Over UDP a message is at most MaxDatagram bytes: a long daemon line is
// cut.
func TestSyslogUDPTruncates(t *testing.T) {
	r := newUDPReceiver(t)
	cfg := syslogTarget("s", "udp", r.addr())
	cfg.Streams = []string{"daemon"}
	opts, _ := testOptions(t)
	m := newManager(t, []config.LogTarget{cfg}, opts)
	slog.New(m.Handler(slog.NewTextHandler(io.Discard, nil))).Info(strings.Repeat("x", 5000))
	testutil.WaitFor(t, "the message received", func() bool { return len(r.messages()) == 1 })
	msg := r.messages()[0]
	if len(msg) != MaxDatagram {
		t.Fatalf("datagram of %d bytes, want %d", len(msg), MaxDatagram)
	}
	checkMsg(t, msg, "daemon", 6)
}

var itemRE = regexp.MustCompile(`/item/(\d+) HTTP`)

// A TCP receiver that accepts and never reads: the kernel buffers fill,
// then the queue, then lines are dropped; no Access call waits. When it
// reads again, new lines arrive again; every line is written or dropped,
// and none arrives twice.
func TestSyslogTCPStalledReceiver(t *testing.T) {
	r := newTCPReceiver(t, "127.0.0.1:0", true)
	cfg := syslogTarget("s", "tcp", r.addr())
	cfg.Queue = 1024
	opts, _ := testOptions(t)
	opts.WriteTimeout = 200 * time.Millisecond
	m := newManager(t, []config.LogTarget{cfg}, opts)

	const sent = 200_000
	returned := 0
	for i := range sent {
		m.Access(httpRecord(i))
		returned++
	}
	if returned != sent {
		t.Fatalf("%d of %d calls returned", returned, sent)
	}
	s := status(t, m, "s")
	if s.DroppedQueueFull == 0 {
		t.Fatalf("nothing dropped though the receiver reads nothing: %+v", s)
	}
	testutil.WaitFor(t, "the writer to notice the stalled peer", func() bool {
		return status(t, m, "s").WriteErrors > 0
	})

	r.unpause()
	// New lines arrive again: keep sending marked lines until one does.
	marker := sent
	testutil.WaitFor(t, "a line sent after the receiver resumed to arrive", func() bool {
		m.Access(httpRecord(marker))
		marker++
		for _, msg := range r.messages() {
			if id := itemID(msg); id >= sent {
				return true
			}
		}
		return false
	})
	m.Close()
	s = status(t, m, "s")
	total := uint64(marker)
	if s.Written+s.Dropped != total || s.Queued != 0 {
		t.Fatalf("written %d + dropped %d != sent %d (queued %d)", s.Written, s.Dropped, total, s.Queued)
	}
	seen := map[int]bool{}
	for _, msg := range r.messages() {
		checkMsg(t, msg, "access", 6)
		id := itemID(msg)
		if seen[id] {
			t.Fatalf("line %d arrived twice", id)
		}
		seen[id] = true
	}
	if uint64(len(seen)) > s.Written {
		t.Fatalf("%d lines arrived, more than the %d written", len(seen), s.Written)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		t.Fatalf("malformed frames: %v", r.bad)
	}
	t.Logf("sent %d: written %d, dropped %d (queue full %d), %d arrived, %d reconnects, %d cut frames",
		total, s.Written, s.Dropped, s.DroppedQueueFull, len(seen), s.Reconnects, r.cut)
}

func itemID(msg []byte) int {
	mm := itemRE.FindSubmatch(msg)
	if mm == nil {
		return -1
	}
	id, _ := strconv.Atoi(string(mm[1]))
	return id
}

// A TCP receiver that goes away and comes back on the same port: the
// target reconnects and lines arrive again.
func TestSyslogTCPReconnect(t *testing.T) {
	r := newTCPReceiver(t, "127.0.0.1:0", false)
	addr := r.addr()
	cfg := syslogTarget("s", "tcp", addr)
	opts, logs := testOptions(t)
	m := newManager(t, []config.LogTarget{cfg}, opts)
	m.Access(httpRecord(0))
	testutil.WaitFor(t, "line 0 received", func() bool { return len(r.messages()) == 1 })

	r.stop()
	// Until the receiver is back, reconnects are refused: wait for one (a
	// new receiver started before any was tried would leave no
	// "unreachable" to report, as happened under load).
	testutil.WaitFor(t, "a refused reconnect", func() bool {
		m.Access(httpRecord(1))
		return strings.Contains(status(t, m, "s").LastError, "connect")
	})
	r2 := newTCPReceiver(t, addr, false)
	id := 2
	testutil.WaitFor(t, "a line received by the new receiver", func() bool {
		m.Access(httpRecord(id))
		id++
		return len(r2.messages()) > 0
	})
	s := status(t, m, "s")
	if s.Reconnects == 0 || !s.Connected || s.LastError == "" || s.Failing {
		t.Fatalf("status %+v", s)
	}
	// The failure streak is reported once, by whichever failed first: a
	// write the receiver's close cut ("not taking lines") or, when the
	// reader saw the close before any write, the refused connect
	// ("unreachable"); both orders happen.
	out := logs.String()
	if !strings.Contains(out, "log target unreachable") && !strings.Contains(out, "log target not taking lines") {
		t.Errorf("daemon log reports no failure:\n%s", out)
	}
	if !strings.Contains(out, "log target writing again") {
		t.Errorf("daemon log lacks %q:\n%s", "log target writing again", out)
	}
}

// A host name in address is resolved at connect time.
func TestSyslogResolvesName(t *testing.T) {
	// localhost is 127.0.0.1 and, in Debian's /etc/hosts, ::1 too (which
	// Go dials first): the receiver listens at one port on both, a port
	// free on both loopbacks.
	var r *udpReceiver
	for i := 0; ; i++ {
		r = newUDPReceiver(t)
		err := r.alsoOnIPv6(t)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || i == 20 {
			t.Logf("receiving on 127.0.0.1 only: %v", err)
			break
		}
	}
	_, port, _ := net.SplitHostPort(r.addr())
	opts, _ := testOptions(t)
	m := newManager(t, []config.LogTarget{syslogTarget("s", "udp", net.JoinHostPort("localhost", port))}, opts)
	id := 0
	testutil.WaitFor(t, "a line received", func() bool {
		m.Access(httpRecord(id))
		id++
		return len(r.messages()) > 0
	})
}

// Close drains what is queued for a syslog target that is unreachable
// only until DrainTimeout: it returns, and the lines are counted dropped.
func TestCloseBoundedWithDeadTarget(t *testing.T) {
	// Nothing listens: every connect is refused. A port bound and closed
	// could be taken meanwhile by another test's listener (it was, by a
	// parallel package's: the lines were written).
	addr := testutil.ReservedAddr(t)
	opts, _ := testOptions(t)
	opts.DrainTimeout = 300 * time.Millisecond
	m := newManager(t, []config.LogTarget{syslogTarget("s", "tcp", addr)}, opts)
	for i := range 100 {
		m.Access(httpRecord(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { m.Close(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
	s := status(t, m, "s")
	if s.Written != 0 || s.Dropped != 100 || s.LastError == "" || !s.Failing {
		t.Fatalf("status %+v", s)
	}
}

// UDP to an IPv6 receiver: the batch sender works on an IPv6 socket too.
func TestSyslogUDPIPv6(t *testing.T) {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer c.Close()
	opts, _ := testOptions(t)
	m := newManager(t, []config.LogTarget{syslogTarget("s", "udp", c.LocalAddr().String())}, opts)
	for i := range 3 {
		m.Access(httpRecord(i))
	}
	buf := make([]byte, 4096)
	for i := range 3 {
		c.SetReadDeadline(time.Now().Add(testutil.WaitTimeout))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := checkMsg(t, buf[:n], "access", 6); itemID([]byte(got.text)) != i {
			t.Fatalf("datagram %d is %q", i, got.text)
		}
	}
}

// Lines that queue up go out many datagrams per sendmmsg: each line is
// still one datagram holding one whole message, in order, and the
// writer's linger between batches loses none (the queue holds them).
func TestSyslogUDPBatches(t *testing.T) {
	r := newUDPReceiver(t)
	cfg := syslogTarget("s", "udp", r.addr())
	cfg.Queue = 4096
	opts, _ := testOptions(t)
	m := newManager(t, []config.LogTarget{cfg}, opts)
	// In rounds of two sendmmsg's worth: the receiver's socket buffer
	// (capped by rmem_max, 208 KiB on a stock kernel) holds a round, not
	// all of them, and
	// UDP drops what overflows it.
	const round, lines = 2 * udpBatch, 2 * udpBatch * 5
	for i := range lines {
		m.Access(httpRecord(i))
		if (i+1)%round == 0 {
			testutil.WaitFor(t, "the round received", func() bool { return len(r.messages()) >= i+1 })
		}
	}
	for i, msg := range r.messages() {
		if got := checkMsg(t, msg, "access", 6); itemID([]byte(got.text)) != i {
			t.Fatalf("datagram %d is %q", i, got.text)
		}
	}
	// Counted after sendmmsg returned: the receiver may be ahead.
	testutil.WaitFor(t, "every line counted written", func() bool { return status(t, m, "s").Written >= lines })
	if s := status(t, m, "s"); s.Written != lines || s.Dropped != 0 {
		t.Fatalf("status %+v", s)
	}
}
