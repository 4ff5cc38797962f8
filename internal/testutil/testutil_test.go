package testutil

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// TestReservedAddr: the reserved port refuses connects, cannot be taken by
// a bind without SO_REUSEADDR, and a Go listener can still take it and be
// reached there.
func TestReservedAddr(t *testing.T) {
	addr := ReservedAddr(t)
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)

	if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial the reserved %s: %v, want connection refused", addr, err)
	}

	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port})
	syscall.Close(fd)
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("bind without SO_REUSEADDR to the reserved %s: %v, want address in use", addr, err)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("a Go listener on the reserved %s: %v", addr, err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s once listened on: %v", addr, err)
	}
	c.Close()
}

// TestReservedAddrNotGiven: in a namespace whose ephemeral range is two
// ports, one reserved, a port-0 listener gets the other, a second one finds
// no port and a connect finds no local port: neither is given the
// reserved one, as both would be given a port bound and closed.
func TestReservedAddrNotGiven(t *testing.T) {
	skip, err := InFreshNetns(func() (string, error) {
		const lo, hi = 40000, 40001
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", fmt.Appendf(nil, "%d %d", lo, hi), 0); err != nil {
			return fmt.Sprintf("cannot narrow the port range: %v", err), nil
		}
		addr := ReservedAddr(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("the one free port: %w", err)
		}
		defer ln.Close()
		if ln.Addr().String() == addr {
			return "", fmt.Errorf("a port-0 listener was given the reserved %s", addr)
		}
		if ln2, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
			ln2.Close()
			return "", fmt.Errorf("a second port-0 listener was given %s (reserved %s)", ln2.Addr(), addr)
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
			return "", fmt.Errorf("a connect was given the local port of %s (reserved %s)", c.LocalAddr(), addr)
		}
		if !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return "", fmt.Errorf("connect with no local port left: %w, want EADDRNOTAVAIL", err)
		}
		return "", nil
	})
	if skip != "" {
		t.Skip(skip)
	}
	if err != nil {
		t.Fatal(err)
	}
}
