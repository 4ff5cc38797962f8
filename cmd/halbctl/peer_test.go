package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"halb/appliance/api"
)

func TestPeerTable(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.Local)
	p := api.PeerStatus{
		Listen: "[::]:7900", Fingerprint: "sha256:aa", ConfigVersion: "lb1:5 lb2:3", Origin: "lb1 at 2026-12-05 09:59:00",
		Pairing: &api.PairingState{Expires: now.Add(5 * time.Minute), TriesLeft: 4},
		Peers: []api.PeerState{
			{Name: "lb2", Address: "10.0.0.2", Port: 7900, Fingerprint: "sha256:bb", Paired: true, Reachable: true, LastSeen: now.Add(-400 * time.Millisecond),
				Roles: map[string]string{"web-b": "MASTER", "web-a": "BACKUP"}, ConfigVersion: "lb1:5 lb2:3", InSync: true, ClockSkew: 2 * time.Second, SkewAlarm: true,
				Sync:       &api.SyncState{Version: "lb1:5 lb2:3", State: "rejected", Error: "proxy: listen 10.0.0.100:80: address in use", At: now},
				SplitBrain: []string{"web-b"}},
			{Name: "lb3", Address: "10.0.0.3", Port: 7900, Paired: false},
		},
		Conflict: &api.Conflict{Message: "changes made apart: lb2's lb1:4 lb2:3 won over lb1's lb1:5 lb2:2"},
		Alarms:   []string{"peer lb3 is not paired"},
	}
	raw, _ := json.Marshal(p)
	var b bytes.Buffer
	printPeer(&b, raw, now)
	out := b.String()
	for _, want := range []string{
		"peer\t2 peer(s)\tconfig lb1:5 lb2:3, last changed on lb1 at 2026-12-05 09:59:00, listening on [::]:7900",
		"PAIRING", "4 tries left",
		"lb2", "reachable, seen 400ms ago, config lb1:5 lb2:3 (in sync), CLOCK +2s (beyond time.max_offset)",
		"10.0.0.2 port 7900, sha256:bb", "vrrp: web-a BACKUP, web-b MASTER",
		"last change lb1:5 lb2:3 REJECTED by lb2: proxy: listen 10.0.0.100:80: address in use",
		"SPLIT BRAIN: both MASTER of web-b",
		"lb3", "NOT PAIRED",
		"CONFLICT", "won over lb1's", "halbctl peer resolve mine|theirs",
		"ALARM", "peer lb3 is not paired",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("peer table lacks %q:\n%s", want, out)
		}
	}
}

func TestPairUsage(t *testing.T) {
	for _, args := range [][]string{{"pair"}, {"pair", "join", "10.0.0.1"}, {"pair", "frob"}, {"unpair"}, {"peer", "resolve", "both"}} {
		if code, _, errOut := runCtl(append([]string{"-socket", "/nonexistent.sock"}, args...)...); code != 2 {
			t.Errorf("halbctl %q: exit %d, want 2 (usage)\n%s", args, code, errOut)
		}
	}
}
