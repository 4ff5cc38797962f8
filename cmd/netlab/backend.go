package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"

	"halb/netlab"
)

// backend serves netlab's HTTP backend (200 with its name in the body and
// in X-Backend, on every path) on a loopback address until SIGINT/SIGTERM.
// It needs no root: the daemon demo (scripts/demo.sh) runs its backends with
// it. Only loopback addresses are accepted, so nothing it does leaves the
// machine. It prints "NAME listening on ADDR" once it accepts connections.
func backend(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	name := fs.String("name", "be1", "the name it answers with")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: netlab backend [-name be1] 127.0.0.1:PORT (port 0: any free port)")
		fs.PrintDefaults()
	}
	fs.Parse(args)
	if fs.NArg() != 1 {
		fs.Usage()
		os.Exit(2)
	}
	addr := fs.Arg(0)
	if err := loopbackOnly(addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("backend %s: %w", *name, err)
	}
	b := netlab.NewBackend(*name)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		b.Close()
	}()
	fmt.Printf("%s listening on %s\n", *name, ln.Addr())
	return b.Serve(ln)
}

// loopbackOnly refuses an address whose host is not a loopback IP literal.
func loopbackOnly(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("backend: address %q: want a loopback IP and port, e.g. 127.0.0.1:0: %w", addr, err)
	}
	if !ap.Addr().IsLoopback() {
		return fmt.Errorf("backend: address %q is not a loopback address (127.0.0.0/8 or ::1)", addr)
	}
	return nil
}
