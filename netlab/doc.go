// Package netlab builds topologies of network namespaces (a switch bridge,
// hosts with veth links, several LANs), runs the real halbd — or the
// keepalived + HAProxy reference — inside them, injects faults and measures
// what a client sees during failover. Its tests need root; without root they
// skip with the reason. It arrives with the netlab issue; `make netlab` runs
// its scenarios.
package netlab
