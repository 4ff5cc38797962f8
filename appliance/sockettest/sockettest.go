// Package sockettest helps tests that bind real sockets: a loopback
// address nothing uses, and the kernel's view of a listening socket, so a
// test can tell the same socket from a new one bound on the same address.
//
// It runs anywhere with a loopback interface and /proc (Linux); ListenInode
// skips the test without /proc/net/tcp.
package sockettest

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// LoopbackAddr returns "ip:port" on a random address of 127/8 that nothing
// listened on a moment ago: the port is the kernel's pick for that
// address, released at once. Another program taking the same port on the
// same random address in between is as good as impossible, unlike a port
// of 127.0.0.1 picked the same way.
func LoopbackAddr(t testing.TB) string {
	t.Helper()
	ip := netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(250)), byte(rand.IntN(256)), byte(1 + rand.IntN(250))})
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// ListenInode returns the kernel's inode of the socket listening on addr
// (an IPv4 "ip:port"), from /proc/net/tcp: the same inode before and after
// a reload is the same socket, which never stopped accepting. The test
// fails when nothing listens there.
func ListenInode(t testing.TB, addr string) string {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		t.Fatalf("ListenInode(%q): want an IPv4 ip:port", addr)
	}
	ip := ap.Addr().As4()
	// The kernel prints the address as a host-order 32-bit number.
	local := fmt.Sprintf("%08X:%04X", binary.NativeEndian.Uint32(ip[:]), ap.Port())
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 9 && fs[1] == local && fs[3] == "0A" { // TCP_LISTEN
			return fs[9]
		}
	}
	t.Fatalf("no socket listens on %s (%s in /proc/net/tcp)", addr, local)
	return ""
}

// Free fails the test unless addr can be bound (no socket holds it).
func Free(t testing.TB, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("%s is held: %v", addr, err)
	}
	ln.Close()
}

// Serve accepts connections on a new 127.0.0.1 listener until the test
// ends and hands each to handle (in its own goroutine; handle closes it).
// It returns the listener's address.
func Serve(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}
