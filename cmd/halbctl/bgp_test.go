package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestStatusBGP: sessions and VIPs, announced or not and why.
func TestStatusBGP(t *testing.T) {
	now := time.Date(2026, 12, 5, 22, 0, 0, 0, time.UTC)
	raw := json.RawMessage(`{"asn":65001,"router_id":"10.0.0.1",
		"sessions":[{"address":"10.0.0.254","asn":65000,"state":"established","since":"2026-12-05T21:58:30Z","received":0,"sent":1},
			{"address":"10.0.1.254","asn":65000,"state":"active","received":0,"sent":0,"down_reason":"hold-timer-expired","last_down":"2026-12-05T21:55:00Z"}],
		"vips":[{"vip":"192.168.10.100/32","announced":true,"prepend":3,"reason":"healthy: web; standby: AS path prepended 3 times"},
			{"vip":"192.168.10.101/32","announced":false,"reason":"not healthy: api (fewer than min_healthy servers up)"}]}`)
	var b bytes.Buffer
	printBGP(&b, raw, now)
	for _, want := range []string{
		"bgp\t2 session(s)\tAS 65001, router id 10.0.0.1",
		"  neighbor 10.0.0.254\tAS 65000\testablished 1m30s, 0 prefix(es) received, 1 sent",
		"  neighbor 10.0.1.254\tAS 65000\tACTIVE, 0 prefix(es) received, 0 sent, last down 5m0s ago: hold-timer-expired",
		"  vip 192.168.10.100/32\tannounced (prepend 3)\thealthy: web; standby: AS path prepended 3 times",
		"  vip 192.168.10.101/32\tNOT ANNOUNCED\tnot healthy: api (fewer than min_healthy servers up)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	printBGP(&b, json.RawMessage("null"), now)
	if b.Len() != 0 {
		t.Errorf("bgp off printed %q", b.String())
	}
}
