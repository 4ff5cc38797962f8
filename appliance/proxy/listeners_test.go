package proxy

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"halb/internal/testutil"
)

// svcConfig is a config of tcp services, each "name=addr,addr>server"
// (server: the address of its one server).
func svcConfig(services ...string) string {
	var b strings.Builder
	b.WriteString("node: {name: lb1}\nservices:\n")
	var bes strings.Builder
	for i, s := range services {
		name, rest, _ := strings.Cut(s, "=")
		listen, server, _ := strings.Cut(rest, ">")
		fmt.Fprintf(&b, "  - {name: %s, listen: [\"%s\"], mode: tcp, default_backend: b%d}\n", name, strings.ReplaceAll(listen, ",", `", "`), i)
		fmt.Fprintf(&bes, "  - name: b%d\n    servers: [{name: s, address: \"%s\"}]\n", i, server)
	}
	return b.String() + "backends:\n" + bes.String()
}

// waitName waits until a new connection to addr is answered by name.
func waitName(t *testing.T, addr, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, c := dialName(t, addr)
		c.Close()
		if got == name {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is answered by %q, want %q", addr, got, name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReloadHandsOverListeners: an address the running config holds is
// handed to the new config's owner, not closed and bound again: when it
// moves from one service to another, and when a service keeps it and gains
// another, the same socket (same inode) goes on accepting.
func TestReloadHandsOverListeners(t *testing.T) {
	x, y := testutil.ReservedAddr(t), testutil.ReservedAddr(t)
	c := run(t, mustConfig(t, svcConfig("a="+x+">"+namer(t, "first"))))
	waitName(t, x, "first")
	ino := testutil.ListenInode(t, x)

	// x moves from service a to a new service b (a is removed).
	if err := c.Apply(mustConfig(t, svcConfig("b="+x+">"+namer(t, "moved")))); err != nil {
		t.Fatalf("apply: %v", err)
	}
	waitName(t, x, "moved")
	if got := testutil.ListenInode(t, x); got != ino {
		t.Fatalf("moving %s to another service bound a new socket (inode %s, was %s)", x, got, ino)
	}

	// b keeps x and gains y.
	if err := c.Apply(mustConfig(t, svcConfig("b="+x+","+y+">"+namer(t, "both")))); err != nil {
		t.Fatalf("apply: %v", err)
	}
	waitName(t, x, "both")
	waitName(t, y, "both")
	if got := testutil.ListenInode(t, x); got != ino {
		t.Fatalf("adding %s beside %s bound a new socket for %s (inode %s, was %s)", y, x, x, got, ino)
	}
	st := c.Status().([]ServiceStatus)
	if len(st) != 1 || st[0].Name != "b" || strings.Join(st[0].Listening, ",") != x+","+y || st[0].Error != "" {
		t.Fatalf("status %+v, want b listening on %s,%s", st, x, y)
	}
}

// TestApplyRefusesAddressInUse: a config with an address another socket
// holds is refused by Apply with an error naming the service and the
// address, and changes nothing: the running listeners and state stay, and
// the addresses the refused config would have added are released.
func TestApplyRefusesAddressInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0") // another program's socket
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	x, y := testutil.ReservedAddr(t), testutil.ReservedAddr(t)
	c := run(t, mustConfig(t, svcConfig("web="+x+">"+namer(t, "old"))))
	waitName(t, x, "old")
	ino := testutil.ListenInode(t, x)

	// The same service moved to the held port, and then the held port
	// beside x and a free y.
	for _, listen := range []string{held.Addr().String(), x + "," + y + "," + held.Addr().String()} {
		err := c.Apply(mustConfig(t, svcConfig("web="+listen+">"+namer(t, "new"))))
		if err == nil {
			t.Fatalf("listen %s: Apply accepted an address another socket holds", listen)
		}
		for _, want := range []string{`service "web"`, held.Addr().String(), "address already in use"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("listen %s: error %q does not say %q", listen, err, want)
			}
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("error %v does not wrap EADDRINUSE", err)
		}
	}
	testutil.Free(t, y) // bound while the second config was tried, released
	// The running config goes on: a new connection to x reaches "old" on the
	// same socket, and status shows no error.
	waitName(t, x, "old")
	if got := testutil.ListenInode(t, x); got != ino {
		t.Fatalf("a refused Apply replaced the socket of %s", x)
	}
	st := c.Status().([]ServiceStatus)
	if len(st) != 1 || strings.Join(st[0].Listening, ",") != x || st[0].Error != "" {
		t.Fatalf("status after a refused Apply: %+v", st)
	}
	// A valid config after the refusal applies.
	if err := c.Apply(mustConfig(t, svcConfig("web="+x+","+y+">"+namer(t, "next")))); err != nil {
		t.Fatal(err)
	}
	waitName(t, y, "next")
	waitName(t, x, "next")
}

// TestPrepareAbort: Prepare binds what a config adds without changing what
// runs, reports every address it cannot bind, and Abort gives back what it
// bound; a prepared config then applied serves on them. A config applied
// and replaced before Run took it up leaves nothing bound behind.
func TestPrepareAbort(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	x, y, z := testutil.ReservedAddr(t), testutil.ReservedAddr(t), testutil.ReservedAddr(t)
	c := run(t, mustConfig(t, svcConfig("web="+x+">"+namer(t, "old"))))
	waitName(t, x, "old")

	err = c.Prepare(mustConfig(t, svcConfig("web="+x+">"+namer(t, "new"), "db="+y+","+held.Addr().String()+">"+namer(t, "db"))))
	var be *BindError
	if !errors.As(err, &be) || be.Service != "db" || be.Addr != held.Addr().String() {
		t.Fatalf("Prepare with a held address: %v, want the BindError of db's %s", err, held.Addr())
	}
	testutil.Free(t, y)

	next := mustConfig(t, svcConfig("web="+x+","+y+">"+namer(t, "new")))
	if err := c.Prepare(next); err != nil {
		t.Fatal(err)
	}
	if ln, err := net.Listen("tcp", y); err == nil {
		ln.Close()
		t.Fatalf("Prepare did not bind %s", y)
	}
	waitName(t, x, "old") // nothing changed yet
	c.Abort()
	testutil.Free(t, y)

	if err := c.Prepare(next); err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(next); err != nil {
		t.Fatal(err)
	}
	waitName(t, y, "new")
	waitName(t, x, "new")

	// Two reloads in a row, the first with z, the second without z and y.
	if err := c.Apply(mustConfig(t, svcConfig("web="+x+","+y+","+z+">"+namer(t, "burst")))); err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(mustConfig(t, svcConfig("web="+x+">"+namer(t, "last")))); err != nil {
		t.Fatal(err)
	}
	waitName(t, x, "last")
	for _, a := range []string{y, z} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			ln, err := net.Listen("tcp", a)
			if err == nil {
				ln.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s is still bound after a config without it: %v", a, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
