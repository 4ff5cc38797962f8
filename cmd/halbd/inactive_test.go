package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"halb/appliance/config"
)

// configInactive sets every key that this build does not use, and nothing
// that opens a socket or touches the machine (no node.management, no
// time.servers: halbd would configure this machine's eth0 and query off
// the machine; startHalbd refuses such configs).
const configInactive = `node:
  name: lb1
peers: [{name: lb2, address: 172.16.0.2}]
`

// TestInactiveKeysWarned: loading, reloading and applying a config that sets
// keys this build does not use logs a warning naming each of them.
func TestInactiveKeysWarned(t *testing.T) {
	if len(config.InactiveKeys()) == 0 {
		t.Skip("every key is active in this build (the last one, peers, since issue 15)")
	}
	h := startHalbd(t, configInactive)
	waitWarnings := func(when string, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			logs := h.logs.String()
			ok := true
			for _, key := range []string{"peers"} {
				if strings.Count(logs, `level=WARN msg="config key not active in this build: parsed and validated, but nothing uses it" key=`+key+" ") < n {
					ok = false
				}
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: want %d warning(s) for each inactive key; log:\n%s", when, n, logs)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitWarnings("start", 1)
	h.sighup()
	h.waitEvent("config.applied")
	waitWarnings("SIGHUP", 2)
	if _, err := h.client.ApplyConfig(context.Background(), []byte(configInactive)); err != nil {
		t.Fatal(err)
	}
	waitWarnings("apply", 3)
}
