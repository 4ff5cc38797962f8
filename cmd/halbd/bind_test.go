package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"halb/internal/testutil"
)

// namer serves connections on a loopback port until the test ends: each
// gets name and a newline, then an echo. It returns the address.
func namer(t *testing.T, name string) string {
	t.Helper()
	return testutil.Serve(t, func(c net.Conn) {
		defer c.Close()
		fmt.Fprintf(c, "%s\n", name)
		io.Copy(c, c)
	})
}

// waitName waits until a new connection to addr is answered by name.
func waitName(t *testing.T, addr, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got string
	var err error
	for time.Now().Before(deadline) {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			got, err = bufio.NewReader(c).ReadString('\n')
			c.Close()
			if got = strings.TrimSpace(got); got == name {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s answers %q (%v), want %q", addr, got, err, name)
}

// tcpService is a config with one tcp service on listen (addresses
// separated by commas) in front of one server.
func tcpService(name, listen, server string) string {
	return fmt.Sprintf(`node:
  name: lb1
services:
  - {name: %s, listen: ["%s"], mode: tcp, default_backend: be}
backends:
  - name: be
    health: {check: none}
    servers: [{name: s1, address: "%s"}]
`, name, strings.ReplaceAll(listen, ",", `", "`), server)
}

// halbctl runs the halbctl binary against h and returns its exit code and
// output.
func (h *halbd) halbctl(args ...string) (int, string, string) {
	h.t.Helper()
	return h.halbctlIn("", args...)
}

// halbctlIn is halbctl with stdin as its standard input.
func (h *halbd) halbctlIn(stdin string, args ...string) (int, string, string) {
	h.t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(halbctlBin, append([]string{"-socket", h.socket}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errOut.String()
	}
	h.t.Fatalf("halbctl: %v", err)
	return 0, "", ""
}

// TestApplyRefusedWhenAddressInUse: a config whose listen address another
// program holds is refused, by halbctl config apply and by SIGHUP: halbctl
// says why (file, line, field, service, address, error) and exits 1, the
// file is not saved, status and the event stream report the rejection,
// and the running config goes on accepting on the same socket.
func TestApplyRefusedWhenAddressInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0") // another program's port
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	x, server := testutil.ReservedAddr(t), namer(t, "one")
	running := tcpService("echo", x, server)
	h := startHalbd(t, running)
	waitName(t, x, "one")
	ino := testutil.ListenInode(t, x)

	bad := filepath.Join(t.TempDir(), "moved.yaml")
	badCfg := tcpService("echo", held.Addr().String(), server)
	if err := os.WriteFile(bad, []byte(badCfg), 0o644); err != nil {
		t.Fatal(err)
	}
	why := fmt.Sprintf(`services[0].listen[0]: service "echo" cannot listen on %s: bind: address already in use`, held.Addr())
	code, out, errOut := h.halbctl("config", "apply", bad)
	if code != 1 || strings.Contains(out, "applied") {
		t.Fatalf("halbctl config apply: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	for _, want := range []string{bad + " rejected; the running config stays in force", bad + ":4: " + why} {
		if !strings.Contains(errOut, want) {
			t.Errorf("halbctl's error lacks %q:\n%s", want, errOut)
		}
	}
	ev := h.waitEvent("config.rejected")
	if !strings.Contains(ev.Message, why) || !strings.Contains(ev.Message, "running config stays in force") {
		t.Errorf("rejected event %q does not name the bind error", ev.Message)
	}
	if onDisk, _ := os.ReadFile(h.config); string(onDisk) != running {
		t.Fatalf("the refused config was saved:\n%s", onDisk)
	}
	if _, err := os.Stat(h.config + ".prev"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused apply wrote %s.prev (%v)", h.config, err)
	}
	h.checkRefused(bad, why, running, x, ino, "api")

	// The same file by SIGHUP.
	h.write(badCfg)
	h.sighup()
	ev = h.waitEvent("config.rejected")
	if !strings.Contains(ev.Message, why) {
		t.Errorf("rejected event %q does not name the bind error", ev.Message)
	}
	h.checkRefused(h.config, why, running, x, ino, "file")
}

// checkRefused asserts that the running config is still in force, x still
// accepts on the same socket, and status reports the rejection of file.
func (h *halbd) checkRefused(file, why, running, x, ino, source string) {
	t := h.t
	t.Helper()
	if got := h.servedConfig(); got != running {
		t.Fatalf("the running config changed:\n%s", got)
	}
	waitName(t, x, "one")
	if got := testutil.ListenInode(t, x); got != ino {
		t.Fatalf("the running listener on %s was replaced (inode %s, was %s)", x, got, ino)
	}
	st, err := h.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := st.Config.LastError
	if !st.Config.Loaded || r == nil || r.Source != source || len(r.Errors) != 1 || r.Errors[0].Error() != file+":4: "+why {
		t.Fatalf("status after the refusal: %+v %+v, want the error %q from %s", st.Config, r, file+":4: "+why, source)
	}
}

// TestStartWithAddressInUse: at start, a config whose listen address is
// held is not applied (nothing of it runs: no half-configured node), the
// daemon says why in its log and status and waits; once the address is
// free a SIGHUP applies it.
func TestStartWithAddressInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := held.Addr().String()
	h := startHalbd(t, tcpService("echo", addr, namer(t, "one")))
	st, err := h.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	why := fmt.Sprintf(`services[0].listen[0]: service "echo" cannot listen on %s: bind: address already in use`, addr)
	if st.Config.Loaded || st.Config.LastError == nil || len(st.Config.LastError.Errors) != 1 ||
		st.Config.LastError.Errors[0].Error() != h.config+":4: "+why {
		t.Fatalf("status of a start with a held address: %+v %+v", st.Config, st.Config.LastError)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "cannot listen on "+addr) || !strings.Contains(logs, "no config in force") {
		t.Errorf("the log does not say why nothing runs:\n%s", logs)
	}
	held.Close()
	h.sighup()
	h.waitEvent("config.applied")
	waitName(t, addr, "one")
}

// TestMovedListenAddress: an address that moves from one service to
// another, and a service that keeps its address and gains one, go on
// accepting on the same socket, by API apply and by SIGHUP.
func TestMovedListenAddress(t *testing.T) {
	x, y := testutil.ReservedAddr(t), testutil.ReservedAddr(t)
	h := startHalbd(t, tcpService("a", x, namer(t, "a")))
	waitName(t, x, "a")
	ino := testutil.ListenInode(t, x)

	if _, err := h.client.ApplyConfig(context.Background(), []byte(tcpService("b", x, namer(t, "b")))); err != nil {
		t.Fatalf("apply: %v", err)
	}
	waitName(t, x, "b")
	if got := testutil.ListenInode(t, x); got != ino {
		t.Fatalf("moving %s from service a to b bound a new socket", x)
	}

	h.write(tcpService("b", x+","+y, namer(t, "b2")))
	h.sighup()
	h.waitEvent("config.applied")
	waitName(t, y, "b2")
	waitName(t, x, "b2")
	if got := testutil.ListenInode(t, x); got != ino {
		t.Fatalf("adding %s beside %s bound a new socket for %s", y, x, x)
	}
}
