// Package testutil holds what the unit tests of several packages need and
// would otherwise each write again: a loopback address kept for one test,
// a loopback listener, waiting for the state a test asserts, and a buffer
// that a process or goroutine writes while the test reads it; and a
// thread in a fresh network namespace for tests that change per-namespace
// settings.
//
// It is imported only by tests.
package testutil

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ReservedAddr returns a loopback address "127.0.0.1:port" that is kept for
// the test until it ends: a TCP socket is bound to it with SO_REUSEADDR and
// never listens. Until the code under test listens on it, a connect is
// refused; a Go listener (which sets SO_REUSEADDR) can bind it, in this
// process or another; but no port-0 bind and no outgoing connection can be
// given the port meanwhile, as they could a port that was bound and closed.
func ReservedAddr(t testing.TB) string {
	t.Helper()
	addr, release, err := ReserveAddr()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return addr
}

// ReserveAddr is ReservedAddr for a TestMain: the port is kept until
// release.
func ReserveAddr() (addr string, release func(), err error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("reserve a loopback port: socket: %w", err)
	}
	sa, err := func() (syscall.Sockaddr, error) {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			return nil, fmt.Errorf("reserve a loopback port: SO_REUSEADDR: %w", err)
		}
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return nil, fmt.Errorf("reserve a loopback port: bind: %w", err)
		}
		sa, err := syscall.Getsockname(fd)
		if err != nil {
			return nil, fmt.Errorf("reserve a loopback port: getsockname: %w", err)
		}
		return sa, nil
	}()
	if err != nil {
		syscall.Close(fd)
		return "", nil, err
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port), func() { syscall.Close(fd) }, nil
}

// Listen returns a TCP listener on 127.0.0.1 (a port of the kernel's
// choosing), closed when the test ends.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// WaitTimeout bounds WaitFor. It is long on purpose: a test that passes
// never waits for it, and a loaded machine running -race must not fail a
// test that would pass.
const WaitTimeout = 10 * time.Second

// WaitFor polls cond until it holds and fails the test, saying what it
// waited for, if it does not within WaitTimeout. It is for the state a
// test asserts after an asynchronous call (an Apply, a signal, a close);
// call it from the test's goroutine.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 20*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", WaitTimeout, what)
		}
		time.Sleep(wait)
	}
}

// SyncBuffer is a bytes.Buffer that a process or goroutine may write while
// the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// InFreshNetns runs f on a thread of its own in a new network namespace
// with lo up, and returns what f returns. Sockets f opens, and the files
// under /proc/sys/net it opens, are the namespace's. The thread is never
// unlocked: it ends with f, namespace and all. skip says why the host
// cannot (not root, no namespaces); a skip of f passes through.
func InFreshNetns(f func() (skip string, err error)) (skip string, err error) {
	if os.Geteuid() != 0 {
		return "needs root for a network namespace", nil
	}
	type result struct {
		skip string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		r := result{err: fmt.Errorf("the test stopped its goroutine (t.Fatal in InFreshNetns?)")}
		defer func() { done <- r }()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			r = result{skip: fmt.Sprintf("no network namespace: %v", err)}
			return
		}
		if err := loUp(); err != nil {
			r = result{err: err}
			return
		}
		r.skip, r.err = f()
	}()
	r := <-done
	return r.skip, r.err
}

// loUp sets lo up in the thread's network namespace.
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
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
