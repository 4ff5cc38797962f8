package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"halb/internal/testutil"
)

// skipUnlessICMP skips when this process may open neither a raw ICMP
// socket nor a ping socket, or when the family is missing.
func skipUnlessICMP(t *testing.T, v6 bool) {
	t.Helper()
	c, ping, err := listenICMP(v6)
	if err == nil {
		c.Close()
		t.Logf("ICMP over a %s socket", map[bool]string{false: "raw", true: "ping"}[ping])
		return
	}
	if errors.Is(err, os.ErrPermission) {
		groups, _ := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
		t.Skipf("ICMP sockets not permitted for uid %d gid %d (net.ipv4.ping_group_range = %s): %v",
			os.Getuid(), os.Getgid(), strings.Join(strings.Fields(string(groups)), " "), err)
	}
	if v6 {
		t.Skipf("no IPv6 ICMP: %v", err)
	}
	t.Fatal(err)
}

func skipUnlessIPv6Loopback(t *testing.T) {
	t.Helper()
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	c.Close()
}

// TestICMPLoopback pings the loopback addresses with real sockets.
func TestICMPLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		v6   bool
	}{
		{"127.0.0.1:80", false},
		{"127.0.0.1", false},
		{"[::1]:80", true},
		{"::1", true},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			if tc.v6 {
				skipUnlessIPv6Loopback(t)
			}
			skipUnlessICMP(t, tc.v6)
			if err := runCheck(t, "icmp", time.Second, Target{Addr: tc.addr}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestICMPLocalhost: a name is resolved and its first address pinged.
func TestICMPLocalhost(t *testing.T) {
	ips, err := net.DefaultResolver.LookupNetIP(t.Context(), "ip", "localhost")
	if err != nil || len(ips) == 0 {
		t.Skipf("localhost does not resolve: %v", err)
	}
	v6 := ips[0].Unmap().Is6()
	if v6 {
		skipUnlessIPv6Loopback(t)
	}
	skipUnlessICMP(t, v6)
	if err := runCheck(t, "icmp", time.Second, Target{Addr: "localhost:80"}); err != nil {
		t.Fatal(err)
	}
}

func TestICMPCancelled(t *testing.T) {
	c, _ := NewChecker("icmp")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	err := c.Check(ctx, Target{Addr: "127.0.0.1"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("took %v", took)
	}
}

// echoPeer stands in for a pinged host: a UDP socket on 127.0.0.1 that
// reads echo requests and sends back what answer makes of each, so the
// reply matching can be tested without privileges.
func echoPeer(t *testing.T, v6 bool, answer func(req *icmp.Echo) []icmp.Message) net.Addr {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proto := 1
	if v6 {
		proto = 58
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil {
				t.Errorf("peer: %v", err)
				continue
			}
			req := m.Body.(*icmp.Echo)
			for _, r := range answer(req) {
				b, err := r.Marshal(nil)
				if err != nil {
					t.Errorf("peer: %v", err)
					continue
				}
				c.WriteTo(b, from)
			}
		}
	})
	t.Cleanup(func() { c.Close(); wg.Wait() })
	return c.LocalAddr()
}

// probe runs one echo exchange with a peer over plain UDP; within is the
// timeout its errors name.
func probe(t *testing.T, ctx context.Context, within time.Duration, peer net.Addr, v6, matchID bool) error {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := echoProbe{conn: c, dst: peer, v6: v6, matchID: matchID, who: "peer", within: within}
	return p.run(ctx)
}

func TestICMPReplyMatching(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		var request, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
		var other icmp.Type = ipv4.ICMPTypeDestinationUnreachable
		if v6 {
			request, reply, other = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, ipv6.ICMPTypeDestinationUnreachable
		}
		echo := func(typ icmp.Type, id, seq int, data []byte) icmp.Message {
			return icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}
		}
		// noise is what a raw socket may read before the reply: our own
		// request, other checks' replies, other ICMP.
		noise := func(r *icmp.Echo) []icmp.Message {
			return []icmp.Message{
				echo(request, r.ID, r.Seq, r.Data),
				echo(reply, r.ID^1, r.Seq, r.Data),
				echo(reply, r.ID, r.Seq^1, r.Data),
				echo(reply, r.ID, r.Seq, append([]byte{r.Data[0] ^ 0xff}, r.Data[1:]...)), // another payload
				echo(reply, r.ID, r.Seq, r.Data[:8]),
				{Type: other, Body: &icmp.DstUnreach{Data: make([]byte, 28)}},
			}
		}
		for _, tc := range []struct {
			name    string
			matchID bool
			answer  func(r *icmp.Echo) []icmp.Message
			pass    bool
		}{
			{"reply", true, func(r *icmp.Echo) []icmp.Message {
				return []icmp.Message{echo(reply, r.ID, r.Seq, r.Data)}
			}, true},
			{"noise then reply", true, func(r *icmp.Echo) []icmp.Message {
				return append(noise(r), echo(reply, r.ID, r.Seq, r.Data))
			}, true},
			{"noise only", true, noise, false},
			{"silence", true, func(*icmp.Echo) []icmp.Message { return nil }, false},
			// On ping sockets the kernel sets the ID: only seq and payload count.
			{"other ID on ping socket", false, func(r *icmp.Echo) []icmp.Message {
				return []icmp.Message{echo(reply, r.ID^0x5555, r.Seq, r.Data)}
			}, true},
			{"other ID on raw socket", true, func(r *icmp.Echo) []icmp.Message {
				return []icmp.Message{echo(reply, r.ID^0x5555, r.Seq, r.Data)}
			}, false},
		} {
			// 300ms: the echo peer's answer must come within it on a
			// loaded machine too.
			const timeout = 300 * time.Millisecond
			peer := echoPeer(t, v6, tc.answer)
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			start := time.Now()
			err := probe(t, ctx, timeout, peer, v6, tc.matchID)
			took := time.Since(start)
			cancel()
			if tc.pass {
				if err != nil {
					t.Errorf("v6=%v %s: %v", v6, tc.name, err)
				}
				continue
			}
			if want := "no echo reply from peer within 300ms"; err == nil || err.Error() != want {
				t.Errorf("v6=%v %s: err = %v, want %q", v6, tc.name, err, want)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("v6=%v %s: %v is not context.DeadlineExceeded", v6, tc.name, err)
			}
			if took > timeout+time.Second {
				t.Errorf("v6=%v %s: returned after %v", v6, tc.name, took)
			}
		}
	}
}

func TestICMPCancelWhileWaiting(t *testing.T) {
	peer := echoPeer(t, false, func(*icmp.Echo) []icmp.Message { return nil })
	ctx, cancel := context.WithCancel(t.Context())
	// 300ms: the request is sent by then (the probe waits for the
	// reply), with room for a loaded machine.
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	err := probe(t, ctx, 0, peer, false, true)
	if !errors.Is(err, context.Canceled) || err.Error() != "ping peer: context canceled" {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 1300*time.Millisecond {
		t.Errorf("returned %v after the start, want about 300ms", took)
	}
}

// TestICMPPingSocket runs the fallback for real: in a fresh network
// namespace that allows ping sockets, on a thread without CAP_NET_RAW, the
// raw socket is refused and the check pings over a ping socket.
func TestICMPPingSocket(t *testing.T) {
	skip, err := testutil.InFreshNetns(func() (string, error) { return pingInFreshNetns(t) })
	if skip != "" {
		t.Skip(skip)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// pingInFreshNetns is TestICMPPingSocket on its thread in the fresh
// namespace (which keeps the dropped capability); it reports why the host
// cannot run the test, or what failed.
func pingInFreshNetns(t *testing.T) (skip string, err error) {
	// /proc/sys/net is the namespace of the thread that opens it.
	if err := os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 2147483647"), 0); err != nil {
		return fmt.Sprintf("cannot allow ping sockets in the namespace: %v", err), nil
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		return "", err
	}
	caps[0].Effective &^= 1 << unix.CAP_NET_RAW
	if err := unix.Capset(&hdr, &caps[0]); err != nil {
		return "", err
	}

	// Control: the raw socket is refused now, and the ping socket is used.
	c, ping, err := listenICMP(false)
	if err != nil {
		return fmt.Sprintf("no ping socket in the namespace: %v", err), nil
	}
	c.Close()
	if !ping {
		return "", errors.New("raw ICMP socket opened without CAP_NET_RAW: the test cannot reach the fallback")
	}
	addrs := []string{"127.0.0.1:80"}
	if c, err := net.ListenPacket("udp6", "[::1]:0"); err == nil {
		c.Close()
		addrs = append(addrs, "[::1]:80")
	} else {
		t.Logf("no IPv6 loopback in the namespace: %v", err)
	}
	for _, addr := range addrs {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := icmpChecker{}.Check(ctx, Target{Addr: addr})
		cancel()
		if err != nil {
			return "", fmt.Errorf("%s over a ping socket: %w", addr, err)
		}
		t.Logf("%s: passed over a ping socket", addr)
	}
	return "", nil
}
