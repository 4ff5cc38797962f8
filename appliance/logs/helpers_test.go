package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/internal/testutil"
)

// testOptions are Options with a captured daemon log and short waits.
func testOptions(t testing.TB) (Options, *testutil.SyncBuffer) {
	t.Helper()
	out := &testutil.SyncBuffer{}
	return Options{
		Logger:       slog.New(slog.NewTextHandler(out, nil)),
		Hostname:     "lb1",
		WriteTimeout: 500 * time.Millisecond,
		// Close writes everything however slow the machine (-race, load);
		// the tests of the deadline set their own.
		DrainTimeout: time.Minute,
		backoffMin:   10 * time.Millisecond,
		backoffMax:   200 * time.Millisecond,
	}, out
}

func newManager(t testing.TB, targets []config.LogTarget, opts Options) *Manager {
	t.Helper()
	m, err := New(targets, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func fileTarget(name, path string) config.LogTarget {
	return config.LogTarget{Name: name, To: "file", Streams: []string{"access"}, Path: path,
		MaxSize: config.DefaultLogMaxSize, Keep: new(config.DefaultLogKeep), Queue: config.DefaultLogQueue}
}

func syslogTarget(name, transport, addr string) config.LogTarget {
	return config.LogTarget{Name: name, To: "syslog", Streams: []string{"access"}, Address: addr,
		Transport: transport, Facility: "local3", Tag: "halbtest", Queue: config.DefaultLogQueue}
}

// httpRecord is a complete http access record; id goes into the path.
func httpRecord(id int) *Access {
	return &Access{
		Start:   time.Date(2026, 12, 5, 9, 0, 0, 123_000_000, time.Local),
		Client:  netip.MustParseAddrPort("10.0.0.5:51234"),
		Service: "web", HTTP: true, Backend: "www", Server: "web1",
		Status: 200, BytesIn: 80, BytesOut: 512,
		Request: 0, Queue: 0, Connect: time.Millisecond, Response: 3 * time.Millisecond, Total: 5 * time.Millisecond,
		Termination: [2]byte{'-', '-'},
		Method:      "GET", Host: "www.example.com", Path: fmt.Sprintf("/item/%d", id), Proto: "HTTP/1.1",
	}
}

// status returns the named target's status.
func status(t *testing.T, m *Manager, name string) TargetStatus {
	t.Helper()
	for _, s := range m.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for target %q in %+v", name, m.Status())
	return TargetStatus{}
}

// syslogMsg is a parsed RFC 5424 message.
type syslogMsg struct {
	pri                                int
	version                            int
	timestamp                          time.Time
	host, app, procid, msgid, sd, text string
}

// parse5424 parses <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP
// PROCID SP MSGID SP STRUCTURED-DATA [SP MSG] strictly.
func parse5424(b []byte) (syslogMsg, error) {
	var m syslogMsg
	s := string(b)
	if !strings.HasPrefix(s, "<") {
		return m, errors.New("no <PRI>")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return m, fmt.Errorf("bad PRI in %q", s)
	}
	pri, err := strconv.Atoi(s[1:end])
	if err != nil || pri > 191 {
		return m, fmt.Errorf("bad PRI %q", s[1:end])
	}
	m.pri = pri
	f := strings.SplitN(s[end+1:], " ", 8)
	if len(f) < 7 {
		return m, fmt.Errorf("too few header fields in %q", s)
	}
	if m.version, err = strconv.Atoi(f[0]); err != nil || m.version != 1 {
		return m, fmt.Errorf("version %q is not 1", f[0])
	}
	if m.timestamp, err = time.Parse(time.RFC3339Nano, f[1]); err != nil {
		return m, fmt.Errorf("timestamp: %w", err)
	}
	for i, max := range []int{255, 48, 128, 32} {
		v := f[2+i]
		if v == "" || len(v) > max {
			return m, fmt.Errorf("header field %d %q: empty or longer than %d", 2+i, v, max)
		}
		for _, c := range []byte(v) {
			if c < 33 || c > 126 {
				return m, fmt.Errorf("header field %q has byte %d", v, c)
			}
		}
	}
	m.host, m.app, m.procid, m.msgid, m.sd = f[2], f[3], f[4], f[5], f[6]
	if len(f) == 8 {
		m.text = f[7]
	}
	return m, nil
}

// udpReceiver collects datagrams on a loopback port.
type udpReceiver struct {
	conn *net.UDPConn
	mu   sync.Mutex
	msgs [][]byte
}

func newUDPReceiver(t testing.TB) *udpReceiver {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &udpReceiver{conn: c}
	r.receive(t, c)
	return r
}

// alsoOnIPv6 makes r receive at its port on ::1 too, for a target named
// by a host name that resolves to both loopbacks (Debian's /etc/hosts
// names ::1 localhost, and Go dials ::1 first). It fails where the port is
// taken on ::1 or there is no IPv6 loopback.
func (r *udpReceiver) alsoOnIPv6(t testing.TB) error {
	t.Helper()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback, Port: r.conn.LocalAddr().(*net.UDPAddr).Port})
	if err != nil {
		return err
	}
	r.receive(t, c)
	return nil
}

// receive reads c's datagrams into r.msgs until the test ends.
func (r *udpReceiver) receive(t testing.TB, c *net.UDPConn) {
	c.SetReadBuffer(8 << 20)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.msgs = append(r.msgs, bytes.Clone(buf[:n]))
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
}

func (r *udpReceiver) addr() string { return r.conn.LocalAddr().String() }

func (r *udpReceiver) messages() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.msgs...)
}

// tcpReceiver accepts connections and reads octet-counted frames from
// each; paused, it accepts but reads nothing until resumed.
type tcpReceiver struct {
	ln     net.Listener
	mu     sync.Mutex
	msgs   [][]byte
	cut    int // frames cut short by a closed connection
	bad    []string
	conns  []net.Conn
	resume chan struct{}
	wg     sync.WaitGroup // readers
	accept chan struct{}  // closed when the accept loop returned
}

func newTCPReceiver(t *testing.T, addr string, paused bool) *tcpReceiver {
	t.Helper()
	var lc net.ListenConfig
	if paused {
		// A small receive buffer (inherited by accepted connections)
		// keeps what the kernel holds for a stalled receiver small next
		// to the lines sent, however fast the machine.
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			return errors.Join(err, serr)
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &tcpReceiver{ln: ln, resume: make(chan struct{}), accept: make(chan struct{})}
	if !paused {
		close(r.resume)
	}
	go func() {
		defer close(r.accept)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns = append(r.conns, c)
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				<-r.resume
				r.read(c)
			}()
		}
	}()
	t.Cleanup(r.stop)
	return r
}

func (r *tcpReceiver) read(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		n, err := readFrameLen(br)
		if err == io.EOF {
			return
		}
		if err != nil {
			r.mu.Lock()
			r.bad = append(r.bad, err.Error())
			r.mu.Unlock()
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(br, msg); err != nil {
			r.mu.Lock()
			r.cut++
			r.mu.Unlock()
			return
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, msg)
		r.mu.Unlock()
	}
}

// readFrameLen reads RFC 6587 3.4.1's MSG-LEN SP.
func readFrameLen(br *bufio.Reader) (int, error) {
	n := 0
	for i := 0; ; i++ {
		c, err := br.ReadByte()
		if err != nil {
			if i == 0 {
				return 0, io.EOF
			}
			return 0, fmt.Errorf("frame length cut: %w", err)
		}
		if c == ' ' && i > 0 {
			return n, nil
		}
		if c < '0' || c > '9' || (i == 0 && c == '0') || i > 7 {
			return 0, fmt.Errorf("bad octet count byte %q", c)
		}
		n = n*10 + int(c-'0')
	}
}

func (r *tcpReceiver) addr() string { return r.ln.Addr().String() }

func (r *tcpReceiver) unpause() { close(r.resume) }

func (r *tcpReceiver) messages() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.msgs...)
}

// stop closes the listener and every connection and waits for the
// readers.
func (r *tcpReceiver) stop() {
	r.ln.Close()
	<-r.accept
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
	r.mu.Unlock()
	select {
	case <-r.resume:
	default:
		close(r.resume)
	}
	r.wg.Wait()
}

// isClosed returns a condition for testutil.WaitFor: ch is closed.
func isClosed(ch <-chan struct{}) func() bool {
	return func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
}
