package netcfg

import (
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"halb/appliance/config"
)

// TestDHCPLabRenewalsKeepConnections renews many times (the RenewAfter
// test knob renews every 50 ms: dnsmasq's shortest lease is 2 minutes and
// its T1 a whole second) with a TCP connection echoing through every
// renewal and a VIP (a /32 the test added) on the same link. Asserted:
// no RTM_DELADDR for the leased address or the VIP, the connection never
// fails, the VIP is still there, dnsmasq ACKed every renewal.
// NETLAB_DHCP_RENEWALS sets the count (default 200; the figure is
// 1000).
func TestDHCPLabRenewalsKeepConnections(t *testing.T) {
	want := 200
	if s := os.Getenv("NETLAB_DHCP_RENEWALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("NETLAB_DHCP_RENEWALS=%q: want a positive count", s)
		}
		want = n
	}
	l := newDHCPLab(t)
	h := l.handle()
	const vip = "10.77.0.250/32"
	run(t, "ip", "-n", l.cli, "addr", "add", vip, "dev", labIf)

	// Watch every address event in the client namespace.
	ns, err := netns.GetFromName(l.cli)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	updates := make(chan netlink.AddrUpdate, 4096)
	done := make(chan struct{})
	var mu sync.Mutex
	dels := map[string]int{}
	news := 0
	var wg sync.WaitGroup
	if err := netlink.AddrSubscribeWithOptions(updates, done, netlink.AddrSubscribeOptions{Namespace: &ns, ErrorCallback: func(err error) {
		select {
		case <-done: // the subscription's socket closed at the end
		default:
			t.Errorf("address events: %v", err)
		}
	}}); err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for u := range updates {
			mu.Lock()
			if u.NewAddr {
				news++
			} else {
				dels[u.LinkAddress.String()]++
			}
			mu.Unlock()
		}
	}()
	defer func() { close(done); wg.Wait() }()

	o := Options{}
	o.timing = Timing{Backoff: func(a int) time.Duration { return 500 * time.Millisecond << min(a, 2) },
		MinRenewRetry: time.Second, MaxRenewRetry: 2 * time.Second, RenewAfter: 50 * time.Millisecond}
	mg, _ := l.manager(config.Management{Interface: labIf, DHCP: true}, o)
	ls := bound(t, mg)
	leased := mustPrefix(t, ls.Address)
	acks := l.count(0, "DHCPACK")

	// An echo server in the server namespace, a client from the leased
	// address in the client namespace.
	var ln net.Listener
	inNS(t, l.srv, func() { ln, err = net.Listen("tcp", labServer+":0") })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	var conn net.Conn
	inNS(t, l.cli, func() {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IP(leased.Addr().AsSlice())}, Timeout: 5 * time.Second}
		conn, err = d.Dial("tcp", ln.Addr().String())
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	start := time.Now()
	buf := make([]byte, 8)
	echoes := 0
	limit := time.Now().Add(time.Duration(want) * 500 * time.Millisecond)
	for mg.Status().Interfaces[0].Lease.Renewals < want {
		if time.Now().After(limit) {
			t.Fatalf("%d renewals after %v, want %d", mg.Status().Interfaces[0].Lease.Renewals, time.Since(start), want)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte("halb-dhc")); err != nil {
			t.Fatalf("echo %d: write: %v", echoes, err)
		}
		if _, err := io.ReadFull(conn, buf); err != nil {
			t.Fatalf("echo %d: read: %v", echoes, err)
		}
		echoes++
	}
	elapsed := time.Since(start)
	st := mg.Status().Interfaces[0]
	mu.Lock()
	defer mu.Unlock()
	if n := dels[leased.String()]; n != 0 {
		t.Errorf("the leased address was deleted %d times", n)
	}
	if n := dels[vip]; n != 0 {
		t.Errorf("the VIP was deleted %d times", n)
	}
	if !slices.Contains(l.addrs(h), vip) || st.Lease.Address != leased.String() {
		t.Errorf("addresses after: %v, lease %s (was %s)", l.addrs(h), st.Lease.Address, leased)
	}
	if got := l.count(0, "DHCPACK") - acks; got < want {
		t.Errorf("dnsmasq logged %d ACKs after the first, want ≥ %d", got, want)
	}
	t.Logf("%d renewals in %v (%v each), %d echoes through them, %d RTM_NEWADDR, RTM_DELADDR %v",
		st.Lease.Renewals, elapsed.Round(time.Millisecond), (elapsed / time.Duration(st.Lease.Renewals)).Round(time.Microsecond), echoes, news, dels)
}
