package metrics

import (
	"fmt"
	"time"

	"halb/appliance/api"
	"halb/appliance/health"
	"halb/appliance/proxy"
	"halb/appliance/timesync"
	"halb/appliance/vrrp"
)

// t0 is the fixture's "now".
var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func hist(counts ...uint64) proxy.Histogram {
	h := proxy.Histogram{Bounds: []float64{0.001, 0.01, 0.1, 1}, Counts: counts}
	for i, c := range counts {
		b := 2.0
		if i < len(h.Bounds) {
			b = h.Bounds[i]
		}
		h.Sum += float64(c) * b / 2
	}
	return h
}

// fullSnapshot is a node with every kind of thing the collector reports:
// an http service that terminates TLS (a certificate loaded, one expiring
// soon, one not loaded) and a tcp service with sni_routes, backends with
// TLS verify full and verify none, servers up, down, drained, in slow
// start and unchecked, two VRRP instances, time, a peer and log targets.
func fullSnapshot() Snapshot {
	www := proxy.BackendStatus{Name: "www", TLS: "verify full against the system roots for each server's address", Balance: "roundrobin", Persistence: "cookie SRVID", Requests: 12345, NoServer: 2,
		Queued: 3, QueueMax: 17, QueueTimeouts: 1, Active: 42, Total: 23456, BytesIn: 1234567, BytesOut: 98765432,
		Responses: map[string]int64{"2xx": 12000, "3xx": 100, "4xx": 200, "5xx": 45}, Retries: 7, Redispatches: 5,
		QueueTime: hist(100, 10, 1, 0, 0), ConnectTime: hist(20000, 3000, 400, 50, 6), ResponseTime: hist(1000, 9000, 2000, 300, 45),
		TotalTime: hist(500, 9000, 2500, 300, 45),
		Servers: []proxy.ServerStatus{
			{Name: "web1", Address: "10.0.0.11:80", Up: true, Weight: 10, MaxConn: 100, Active: 30, Total: 15000, ConnectErrors: 4,
				Idle: 6, Responses: map[string]int64{"2xx": 8000, "5xx": 40}, MaxActive: 77, BytesIn: 800000, BytesOut: 60000000,
				Retries: 5, Redispatches: 4, LastSession: t0.Add(-2 * time.Second)},
			{Name: "web2", Address: "10.0.0.12:80", Up: true, Weight: 10, SlowStartPct: 40, Active: 12, Total: 8456, ConnectErrors: 1,
				Responses: map[string]int64{"2xx": 4000, "3xx": 100, "4xx": 200, "5xx": 5}, MaxActive: 33, BytesIn: 434567,
				BytesOut: 38765432, Retries: 2, Redispatches: 1, LastSession: t0.Add(-time.Second)},
		}}
	apiBe := proxy.BackendStatus{Name: "api", TLS: "verify NONE: the servers' certificates are not checked", Balance: "leastconn", Requests: 600, Total: 600, BytesIn: 5000, BytesOut: 70000,
		Responses: map[string]int64{"2xx": 590, "5xx": 10},
		Servers: []proxy.ServerStatus{
			{Name: "api1", Address: "10.0.0.21:8080", Up: false, Weight: 1, Total: 300, ConnectErrors: 9, LastSession: t0.Add(-time.Hour)},
			{Name: "api2", Address: "10.0.0.22:8080", Up: true, Drained: true, Weight: 1, Total: 300, Active: 2, LastSession: t0.Add(-time.Minute)},
		}}
	pg := proxy.BackendStatus{Name: "pg", Balance: "source", Persistence: "source", StickEntries: 4, Active: 5, Total: 900,
		BytesIn: 111, BytesOut: 222, ConnectTime: hist(800, 90, 10, 0, 0), TotalTime: hist(0, 0, 100, 700, 100),
		Servers: []proxy.ServerStatus{
			{Name: "pg1", Address: "10.0.0.31:5432", Up: true, Weight: 1, Active: 5, Total: 900, MaxActive: 9, BytesIn: 111, BytesOut: 222},
		}}
	return Snapshot{
		Node: "lb1", Version: "1.2.3", Started: t0.Add(-26 * time.Hour), At: t0,
		Services: []proxy.ServiceStatus{
			{Name: "web", Mode: "http", Listen: []string{"192.168.10.100:80"}, Listening: []string{"192.168.10.100:80"}, Backend: "www",
				TLS: &proxy.TLSStatus{MinVersion: "1.2", Policy: "intermediate", Default: "main", Certificates: []proxy.CertStatus{
					{Name: "main", Subject: "CN=www.example.com", DNSNames: []string{"www.example.com", "example.com"}, NotAfter: t0.Add(90 * 24 * time.Hour)},
					{Name: "old", Subject: "CN=old.example.com", DNSNames: []string{"old.example.com"}, NotAfter: t0.Add(7*24*time.Hour + time.Hour), ExpiresSoon: true},
					{Name: "broken", Error: "open /etc/halb/tls/broken.pem: no such file or directory"},
				}},
				Stats: proxy.ServiceCounters{Connections: 5000, ActiveConnections: 44, Requests: 12945, BytesIn: 1239567,
					BytesOut: 98835432, Retries: 7, NoServer: 2, BadRequests: 3, Timeouts: 4, ServerErrors: 6, MaxActive: 120,
					Responses: map[string]int64{"2xx": 12590, "3xx": 100, "4xx": 200, "5xx": 55}, TotalTime: hist(1500, 9000, 2500, 300, 45),
					TLS: &proxy.TLSCounters{Handshakes: 4980, Resumed: 1200, TLS12: 480, TLS13: 4500, Failed: map[string]int64{"timeout": 9, "version": 3}}},
				Backends: []proxy.BackendStatus{www, apiBe}},
			{Name: "db", Mode: "tcp", Listen: []string{"192.168.10.100:5432"}, Listening: []string{"192.168.10.100:5432"}, Backend: "pg",
				Stats: proxy.ServiceCounters{Connections: 900, ActiveConnections: 5, BytesIn: 111, BytesOut: 222, MaxActive: 9,
					TotalTime: hist(0, 0, 100, 700, 100), SNI: &proxy.SNICounters{Routed: 850, Default: 40, Refused: map[string]int64{"not_tls": 6, "timeout": 4}}},
				Backends: []proxy.BackendStatus{pg}},
		},
		Health: []health.BackendHealth{
			{Name: "www", Check: "http", Servers: []health.ServerHealth{
				{Name: "web1", Address: "10.0.0.11:80", State: "up", Checks: 500, LastCheck: t0.Add(-time.Second), LatencyMS: 1.5,
					LastChange: t0.Add(-5 * time.Hour), Ups: 1, Downs: 1, Downtime: 90 * time.Second, Reason: "2/2 checks passed"},
				{Name: "web2", Address: "10.0.0.12:80", State: "up", Checks: 499, LastCheck: t0.Add(-time.Second), LatencyMS: 2.25,
					LastChange: t0.Add(-12 * time.Second), Ups: 3, Downs: 3, Downtime: 600 * time.Second},
			}},
			{Name: "api", Check: "tcp", Servers: []health.ServerHealth{
				{Name: "api1", Address: "10.0.0.21:8080", State: "down", Checks: 80, LastCheck: t0.Add(-time.Second), LatencyMS: 1000,
					LastError: "dial tcp 10.0.0.21:8080: i/o timeout", LastChange: t0.Add(-3 * time.Minute), Downs: 1,
					Downtime: 180 * time.Second, Reason: "dial tcp 10.0.0.21:8080: i/o timeout, 3/3 failures"},
				{Name: "api2", Address: "10.0.0.22:8080", State: "up", Checks: 80, LastCheck: t0.Add(-time.Second), LatencyMS: 0.5,
					LastChange: t0.Add(-26 * time.Hour)},
			}},
			{Name: "pg", Check: "none", Servers: []health.ServerHealth{
				{Name: "pg1", Address: "10.0.0.31:5432", State: "unchecked", LastChange: t0.Add(-26 * time.Hour)},
			}},
		},
		VRRP: []vrrp.InstanceStatus{
			{Name: "web-a", Interface: "eth1", VRID: 51, Version: 3, State: vrrp.StateMaster, Priority: 150, EffectivePriority: 150,
				Master: "192.168.10.1", VIPs: []string{"192.168.10.100/24"}, HeldVIPs: []string{"192.168.10.100/24"},
				LastTransition: &vrrp.Transition{From: vrrp.StateBackup, To: vrrp.StateMaster, Reason: "master down timer", At: t0.Add(-10 * time.Minute)},
				Counters:       vrrp.Counters{AdvertsSent: 6000, AdvertsReceived: 120, Dropped: 3, Transitions: 2},
				Drops:          map[string]uint{"ttl": 2, "checksum": 1}},
			{Name: "web-b", Interface: "eth1", VRID: 52, Version: 3, State: vrrp.StateBackup, Priority: 100, EffectivePriority: 40,
				Master: "192.168.10.2", VIPs: []string{"192.168.10.101/24", "192.168.10.102/24"}, HeldVIPs: []string{},
				Counters: vrrp.Counters{AdvertsReceived: 6100}},
		},
		Time: &timesync.Status{Synchronized: true, Offset: 1500 * time.Microsecond, Server: "172.16.0.254", LastSync: t0.Add(-30 * time.Second),
			Steps: 1, Slews: 4},
		Peer: &api.PeerStatus{ConfigVersion: "lb1:5 lb2:3", Peers: []api.PeerState{
			{Name: "lb2", Address: "172.16.0.2", Paired: true, Reachable: true, LastSeen: t0.Add(-500 * time.Millisecond),
				ConfigVersion: "lb1:5 lb2:3", InSync: true, ClockSkew: -2 * time.Millisecond},
		}},
		BGP: &api.BGPStatus{ASN: 65001, RouterID: "10.0.0.1", Sessions: []api.BGPSession{
			{Address: "10.0.0.254", ASN: 65000, State: "established", Since: t0.Add(-90 * time.Second), Received: 2, Sent: 2},
			{Address: "10.0.1.254", ASN: 65000, State: "active", DownReason: "hold-timer-expired", LastDown: t0.Add(-time.Hour)},
		}, VIPs: []api.BGPVIP{
			{VIP: "192.168.10.200/32", Mode: "active_active", State: "announced", Announced: true, Reason: "healthy: web"},
			{VIP: "192.168.10.201/32", Mode: "active_standby", State: "graceful_shutdown", Announced: true, Prepend: 3,
				Communities: []string{"65535:0"}, Reason: "healthy: web; standby: AS path prepended 3 times; maintenance: draining"},
		}, Maintenance: true, Error: "bgp: add neighbor 10.0.2.254 AS 65000: x"},
		Logs: []LogTarget{{Name: "access", To: "file", Lines: 13845, Dropped: 2, Errors: 0}, {Name: "remote", To: "syslog", Lines: 13000, Dropped: 847, Errors: 3}},
	}
}

// bigSnapshot has services×backends×servers: every service uses its own
// backends (names stay unique), every server is checked.
func bigSnapshot(services, backends, servers int) Snapshot {
	s := Snapshot{Node: "lb1", Version: "bench", Started: t0.Add(-time.Hour), At: t0}
	for i := range services {
		svc := proxy.ServiceStatus{Name: fmt.Sprintf("svc%d", i), Mode: "http", Listen: []string{"10.0.0.1:80"}, Listening: []string{"10.0.0.1:80"},
			Stats: proxy.ServiceCounters{Connections: 1e6, Requests: 2e6, BytesIn: 1e9, BytesOut: 1e10,
				Responses: map[string]int64{"2xx": 2e6}, TotalTime: hist(1, 2, 3, 4, 5)}}
		for j := range backends {
			be := proxy.BackendStatus{Name: fmt.Sprintf("be%d_%d", i, j), Balance: "roundrobin", Total: 1e5,
				Responses: map[string]int64{"2xx": 1e5}, QueueTime: hist(1, 2, 3, 4, 5), ConnectTime: hist(1, 2, 3, 4, 5),
				ResponseTime: hist(1, 2, 3, 4, 5), TotalTime: hist(1, 2, 3, 4, 5)}
			bh := health.BackendHealth{Name: be.Name, Check: "http"}
			for k := range servers {
				name := fmt.Sprintf("srv%d", k)
				be.Servers = append(be.Servers, proxy.ServerStatus{Name: name, Address: fmt.Sprintf("10.1.%d.%d:80", j, k), Up: true,
					Weight: 1, Total: 1e4, Responses: map[string]int64{"2xx": 1e4}, LastSession: t0})
				bh.Servers = append(bh.Servers, health.ServerHealth{Name: name, State: "up", Checks: 100, LastCheck: t0, LatencyMS: 1, LastChange: t0})
			}
			svc.Backends = append(svc.Backends, be)
			s.Health = append(s.Health, bh)
		}
		s.Services = append(s.Services, svc)
	}
	return s
}
