// Package netlab is halb's network lab: topologies of network namespaces
// built with netlink (a bridge per LAN in its own namespace, hosts with veth
// links, IPv4 and IPv6 addresses, routes), real programs run inside hosts,
// in-process HTTP backends and a client probe, and faults (SIGKILL,
// SIGSTOP/SIGCONT, link down, partitions and packet loss with nftables, a
// host removed). Load-balancer nodes run either halbd or, as the
// reference, Debian's keepalived and HAProxy configured from the same halb
// config.
//
// Run the failover scenarios as root with `make netlab` (they are also part
// of `make test`); each run writes out/netlab/report.md and report.json.
// Without root every lab test skips with one reason. Prerequisites
// (keepalived, haproxy, nftables, curl, wrk; dnsmasq and chronyd for the
// management network scenario, mgmt_test.go) come from scripts/deps.sh.
// `bin/netlab down -all` removes leftovers of interrupted runs.
//
// Named namespaces live in /run/netns, as iproute2's do, and the lab
// coexists with `ip netns`: before it creates one it makes /run/netns a
// mount point with shared propagation as `ip netns add` does, and it
// removes a namespace whatever mounts lie on top of it (netns.go).
//
// Scenarios that measure failovers of hundreds of milliseconds and more,
// with the CPU mostly idle, run concurrently (after the serial ones), at
// most NETLAB_PARALLEL (default 4) lab topologies at a time.
//
// The reload and overload scenarios (soak_test.go and the files it names:
// reload under load, slow clients, churn and garbage, big bodies, backend
// flapping) run serially on the solo topology, halb beside HAProxy, short
// in `make netlab`; `make soak` runs them at full length and adds the long
// soak (NETLAB_SOAK_FOR, default 10m), writing out/soak/report.md.
//
// The TLS scenario (tls_test.go, TestTLS) proves TLS termination on the
// solo topology, halb beside HAProxy: interop with curl, openssl
// s_client, python3's ssl module and Go's crypto/tls (SNI choice,
// resumption, a request to a backend each), a certificate replaced under
// 100 new TLS connections/s (halbctl cert add --replace; HAProxy's runtime
// API), and testssl.sh's audit of both flavors at once, side by side in
// report.md. The audit runs testssl's protocols, standard ciphers, forward
// secrecy, server defaults and vulnerability checks with --fast (about 70 s
// of CPU a run); NETLAB_TESTSSL=full runs testssl's whole default run
// (minutes), and NETLAB_TESTSSL="--protocols --fs" (any options starting
// with "-") runs those checks instead.
//
// The BGP scenarios (bgp_test.go, TestBGP*) run FRR (Debian's frr: zebra
// and bgpd, from /usr/lib/frr) as the upstream router of two halb nodes
// announcing one VIP: active_active (the ECMP split of a client's
// connections; the time until the router withdraws a failed node's path,
// halbd killed and frozen), active_standby (all to the active node, then
// to the standby), and a planned drain by maintenance (GRACEFUL_SHUTDOWN,
// then the withdrawal after 30s, with the requests that failed counted).
package netlab
