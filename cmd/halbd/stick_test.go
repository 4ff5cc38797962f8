package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"halb/appliance/proxy"
	"halb/internal/testutil"
)

// stickEntries is the stick table size of the first backend of the first
// service in status.
func stickEntries(t *testing.T, raw json.RawMessage) int {
	t.Helper()
	var svcs []proxy.ServiceStatus
	if err := json.Unmarshal(raw, &svcs); err != nil || len(svcs) == 0 || len(svcs[0].Backends) == 0 {
		t.Fatalf("services status: %s (%v)", raw, err)
	}
	return svcs[0].Backends[0].StickEntries
}

// nameAt is the name the server behind addr answers a new connection with.
func nameAt(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	s, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(s)
}

// TestStickSurvivesRestart: source-persistence entries are saved at
// shutdown and taken back with the first config, so a client keeps its
// server across a restart of halbd.
func TestStickSurvivesRestart(t *testing.T) {
	x := testutil.ReservedAddr(t)
	cfg := fmt.Sprintf(`node: {name: lb1}
services:
  - {name: echo, listen: ["%s"], mode: tcp, default_backend: be}
backends:
  - name: be
    balance: random
    sticky: {source: true}
    health: {check: none}
    servers: [{name: s1, address: "%s"}, {name: s2, address: "%s"}]
`, x, namer(t, "one"), namer(t, "two"))
	h := startHalbd(t, cfg)
	// Listening: the first answer pins this client (127.0.0.1) to a server.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", x, time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen", x)
		}
		time.Sleep(10 * time.Millisecond)
	}
	first := nameAt(t, x)
	for range 10 {
		if got := nameAt(t, x); got != first {
			t.Fatalf("source persistence: %s then %s", first, got)
		}
	}
	st, err := h.client.Status(context.Background())
	if err != nil || stickEntries(t, st.Services) != 1 {
		t.Fatalf("before the restart: %v, %d entries", err, stickEntries(t, st.Services))
	}
	_, c, _ := restartHalbd(t, h)
	deadline = time.Now().Add(10 * time.Second)
	for {
		st, err := c.Status(context.Background())
		if err == nil && stickEntries(t, st.Services) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry did not come back after the restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 10 {
		if got := nameAt(t, x); got != first {
			t.Fatalf("after the restart: %s, want %s", got, first)
		}
	}
}
