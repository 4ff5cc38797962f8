package keepalived

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"halb/appliance/config"
)

// lbAlgos maps LVS schedulers onto halb balances; exact is false where
// the behaviour differs.
var lbAlgos = map[string]struct {
	balance string
	exact   bool
	why     string
}{
	"wrr":   {"roundrobin", true, ""},
	"rr":    {"roundrobin", true, ""},
	"wlc":   {"leastconn", true, ""},
	"lc":    {"leastconn", true, ""},
	"sh":    {"source", false, "LVS hashes the source address over the servers; halb's source balance hashes it too but onto a different order: clients land on other servers than under LVS"},
	"mh":    {"source", false, "maglev hashing becomes halb's source hash"},
	"dh":    {"roundrobin", false, "halb has no destination hashing"},
	"lblc":  {"leastconn", false, "halb has no locality-based balancing"},
	"lblcr": {"leastconn", false, "halb has no locality-based balancing"},
	"sed":   {"leastconn", false, "shortest expected delay becomes least connections"},
	"nq":    {"leastconn", false, "never queue becomes least connections"},
	"fo":    {"roundrobin", false, "weighted failover becomes round robin"},
	"ovf":   {"roundrobin", false, "overflow-connection becomes round robin"},
}

var vsDrops = map[string]string{
	"persistence_granularity": "halb keeps each client address on a server, not a network",
	"persistence_engine":      "halb has no persistence engines",
	"alpha":                   "halb's servers start up (health.initial), not down",
	"omega":                   "halb does not remove servers at shutdown",
	"quorum":                  "halb has no quorum; min_healthy of the service counts for track.services",
	"quorum_up":               "halb runs no programs on quorum changes",
	"quorum_down":             "halb runs no programs on quorum changes",
	"hysteresis":              "halb has no quorum",
	"ha_suspend":              "halb checks servers whatever the VRRP state",
	"ops":                     "halb proxies TCP: there are no one-packet UDP sessions",
	"one_packet_scheduling":   "halb proxies TCP: there are no one-packet UDP sessions",
	"sorry_server_inhibit":    "halb's backup server is simply the last resort",
	"sorry_server_lvs_method": "halb proxies; it has no LVS methods",
	"smtp_alert":              "halb sends no e-mail",
	"warmup":                  "halb checks every server at once when it starts",
	"retry":                   "halb takes check settings from the check block (TCP_CHECK, HTTP_GET, SSL_GET)",
	"delay_before_retry":      "halb checks every health.interval, failed or not",
	"connect_timeout":         "halb takes check settings from the check block (TCP_CHECK, HTTP_GET, SSL_GET)",
	"inhibit_on_failure":      "halb gives a down server no new connections and lets open ones finish",
}

// virtualServer maps an LVS virtual server onto a tcp service and its
// backend.
func (m *mapper) virtualServer(st *Stmt) {
	b := m.b
	a := st.Args()
	if len(a) != 2 || a[0] == "fwmark" || a[0] == "group" {
		b.Drop(st.Pos(), st.Text()+" {...}", "a virtual server by firewall mark or group has no halb equivalent: halb listens on addresses and ports", "a service per address and port")
		return
	}
	vip, err := netip.ParseAddr(a[0])
	port, perr := strconv.Atoi(a[1])
	if err != nil || vip.Zone() != "" || perr != nil || port < 1 || port > 65535 {
		b.Drop(st.Pos(), st.Text()+" {...}", "not an address and port halb can listen on (port 0, all ports, has no equivalent)", "")
		return
	}
	listen := hostPort(vip, port)
	for _, s := range b.Config.Services {
		if contains(s.Listen, listen) {
			b.Drop(st.Pos(), st.Text()+" {...}", "service "+s.Name+" (from haproxy.cfg) already listens on "+listen, "")
			return
		}
	}
	for _, d := range st.Block {
		if d.Key() == "protocol" && len(d.Args()) == 1 && d.Args()[0] != "TCP" {
			b.Drop(st.Pos(), st.Text()+" {...}", "protocol "+d.Args()[0]+": halb proxies TCP only", "")
			return
		}
	}
	name := m.uniqueService(fmt.Sprintf("vs_%s_%d", vip, port))
	svc := config.Service{Name: name, Listen: []string{listen}, Mode: "tcp", DefaultBackend: name}
	be := config.Backend{Name: name}
	var kind *Stmt
	var checks []*check
	var hostSt *Stmt
	var unchecked []*Stmt // real servers without a check halb can run
	algo := "wlc"         // keepalived's default scheduler
	for _, d := range st.Block {
		da := d.Args()
		switch k := d.Key(); k {
		case "protocol":
		case "delay_loop":
			if t, ok := seconds(first(da)); ok && t > 0 {
				be.Health.Interval = config.Duration(t)
				continue
			}
			m.unknown(d)
		case "lb_algo", "lvs_sched":
			if _, ok := lbAlgos[first(da)]; ok {
				algo = da[0]
				if !lbAlgos[algo].exact {
					b.Change(d.Pos(), d.Text(), lbAlgos[algo].why, "balance "+lbAlgos[algo].balance)
				}
				continue
			}
			m.unknown(d)
		case "lb_kind", "lvs_method":
			kind = d
		case "persistence_timeout":
			if t, ok := seconds(first(da)); ok && t > 0 {
				be.Sticky.Source = true
				be.Sticky.Expire = config.Duration(max(time.Second, min(t, 24*time.Hour)))
				b.Note(d.Pos(), d.Text(), "sticky: source with expire "+be.Sticky.Expire.String()+" (halb forgets a client idle that long, as LVS's persistence template)")
				continue
			}
			m.unknown(d)
		case "sorry_server":
			ip, p, ok := ipPort(da)
			if !ok {
				m.unknown(d)
				continue
			}
			m.server(&be, d, ip, p, true)
			b.Note(d.Pos(), d.Text(), "a backup server: used only while no real server is up")
		case "real_server":
			ip, p, ok := ipPort(da)
			if !ok {
				m.unknown(d)
				continue
			}
			srv := m.server(&be, d, ip, p, false)
			nchecks := len(checks)
			for _, e := range d.Block {
				ea := e.Args()
				switch e.Key() {
				case "weight":
					n, err := strconv.Atoi(first(ea))
					if err != nil || n < 0 {
						m.unknown(e)
						continue
					}
					if n > 256 {
						b.Change(e.Pos(), e.Text(), "halb's weights are 0..256: 256", "")
						n = 256
					}
					srv.Weight = &n
				case "inhibit_on_failure":
					b.Note(e.Pos(), e.Text(), "keepalived sets a failed server's weight to 0 instead of removing it; halb gives a down server no new connections and lets open ones finish: the same for clients")
				case "TCP_CHECK", "HTTP_GET", "SSL_GET":
					checks = append(checks, m.check(e))
				case "MISC_CHECK":
					b.Drop(e.Pos(), e.Text()+" {...}", "halb does not run programs to check servers", "a vrrp track script for the node, or a tcp/http check of the servers")
				case "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "BFD_CHECK", "FILE_CHECK", "PING_CHECK":
					b.Drop(e.Pos(), e.Text()+" {...}", "halb checks servers by TCP connect, HTTP(S) or ICMP only", "a tcp check")
				case "notify_up", "notify_down":
					b.Drop(e.Pos(), e.Text(), "halb runs no programs on server state changes", "follow `halbctl events`")
				case "uthreshold":
					n, err := strconv.Atoi(first(ea))
					if err != nil || n < 0 {
						m.unknown(e)
						continue
					}
					srv.MaxConn = n
					b.Change(e.Pos(), e.Text(), "maxconn: connections beyond it wait in halb's queue (timeouts.queue) instead of going to another server", "")
				case "lthreshold":
					b.Drop(e.Pos(), e.Text(), "halb has no lower connection threshold", "")
				default:
					m.unknown(e)
				}
			}
			if nchecks == len(checks) {
				unchecked = append(unchecked, d)
			}
		case "virtualhost":
			hostSt = d
		default:
			if why, ok := vsDrops[k]; ok {
				b.Drop(d.Pos(), d.Text(), why, "")
				continue
			}
			m.unknown(d)
		}
	}
	be.Balance = lbAlgos[algo].balance
	if algo == "rr" || algo == "lc" {
		for _, s := range be.Servers {
			if s.EffectiveWeight() != be.Servers[0].EffectiveWeight() {
				b.Change(st.Pos(), "lb_algo "+algo, "LVS's "+algo+" ignores weights; halb's "+be.Balance+" honours them", "")
				break
			}
		}
	}
	why := "LVS forwards packets; halb proxies at L4 (full TCP connections): servers see halb's address, not the client's (unless backends[].proxy_protocol and servers that read it)"
	if kind != nil && len(kind.Args()) == 1 && (kind.Args()[0] == "DR" || kind.Args()[0] == "TUN") {
		why += "; " + kind.Args()[0] + "'s direct return from the servers does not exist: replies pass through halb, and the servers need no VIP on a loopback"
	}
	if kind != nil {
		b.Change(kind.Pos(), kind.Text(), why, "")
	} else {
		b.Change(st.Pos(), st.Text(), why+" (lb_kind NAT, keepalived's default)", "")
	}
	// Health: halb checks per backend; the first real server's check
	// stands for all.
	if len(checks) == 0 {
		be.Health.Check = "none"
		b.Note(st.Pos(), st.Text(), "no TCP_CHECK/HTTP_GET/SSL_GET: health.check none (servers always up, as in keepalived)")
	} else {
		c0 := checks[0]
		h := c0.h
		h.Interval = be.Health.Interval
		be.Health = h
		if hostSt != nil && (h.Check == "http" || h.Check == "https") && h.Host == "" {
			be.Health.Host = first(hostSt.Args())
		}
		for _, d := range unchecked {
			b.Change(d.Pos(), d.Text(), fmt.Sprintf("no check halb can run (keepalived keeps such a server up); halb has one health check per backend: this server gets the %s check too", h.Check), "")
		}
		for _, c := range checks[1:] {
			if !sameHealth(c.h, c0.h) {
				b.Change(c.st.Pos(), c.st.Text()+" {...}", fmt.Sprintf("halb has one health check per backend: the first real server's (%s) is used for every server", c0.st.Pos()), "")
			}
		}
	}
	if hostSt != nil && (be.Health.Check != "http" && be.Health.Check != "https") {
		b.Drop(hostSt.Pos(), hostSt.Text(), "no HTTP check to send it", "")
	}
	if len(be.Servers) == 0 {
		b.Drop(st.Pos(), st.Text()+" {...}", "no real server", "")
		return
	}
	si, bi := len(b.Config.Services), len(b.Config.Backends)
	b.From(fmt.Sprintf("services[%d]", si), st.Pos(), "virtual_server "+strings.Join(a, " "))
	b.From(fmt.Sprintf("backends[%d]", bi), st.Pos(), "virtual_server "+strings.Join(a, " "))
	for j := range be.Servers {
		b.From(fmt.Sprintf("backends[%d].servers[%d]", bi, j), m.serverPos[j], m.serverWhat[j])
	}
	m.serverPos, m.serverWhat = nil, nil
	b.Config.Services = append(b.Config.Services, svc)
	b.Config.Backends = append(b.Config.Backends, be)
}

func ipPort(a []string) (netip.Addr, int, bool) {
	if len(a) != 2 {
		return netip.Addr{}, 0, false
	}
	ip, err := netip.ParseAddr(a[0])
	p, perr := strconv.Atoi(a[1])
	if err != nil || ip.Zone() != "" || perr != nil || p < 1 || p > 65535 {
		return netip.Addr{}, 0, false
	}
	return ip, p, true
}

func (m *mapper) server(be *config.Backend, d *Stmt, ip netip.Addr, port int, backup bool) *config.Server {
	name := sanitize(fmt.Sprintf("%s_%d", ip, port))
	for _, s := range be.Servers {
		if s.Name == name {
			name += "-2"
		}
	}
	be.Servers = append(be.Servers, config.Server{Name: name, Address: hostPort(ip, port), Backup: backup})
	m.serverPos = append(m.serverPos, d.Pos())
	m.serverWhat = append(m.serverWhat, d.Key()+" "+strings.Join(d.Args(), " "))
	return &be.Servers[len(be.Servers)-1]
}

type check struct {
	st *Stmt
	h  config.Health
}

// check maps a TCP_CHECK, HTTP_GET or SSL_GET block.
func (m *mapper) check(st *Stmt) *check {
	b := m.b
	c := &check{st: st}
	h := &c.h
	// keepalived brings a server up on one passing check.
	h.Rise = 1
	switch st.Key() {
	case "TCP_CHECK":
		h.Check = "tcp"
	case "HTTP_GET":
		h.Check = "http"
	case "SSL_GET":
		h.Check = "https"
	}
	urls := 0
	for _, d := range st.Block {
		a := d.Args()
		switch d.Key() {
		case "connect_port":
			if n, err := strconv.Atoi(first(a)); err == nil && n >= 1 && n <= 65535 {
				h.Port = n
				continue
			}
			m.unknown(d)
		case "connect_timeout":
			if t, ok := seconds(first(a)); ok && t > 0 {
				h.Timeout = config.Duration(t)
				continue
			}
			m.unknown(d)
		case "retry", "nb_get_retry":
			if n, err := strconv.Atoi(first(a)); err == nil && n >= 1 {
				h.Fall = n
				b.Change(d.Pos(), d.Text(), fmt.Sprintf("health.fall %d: halb takes a server down after %d failed checks in a row, one every interval; keepalived retries delay_before_retry apart", n, n), "")
				continue
			}
			m.unknown(d)
		case "delay_before_retry":
			b.Drop(d.Pos(), d.Text(), "halb checks every health.interval, failed or not", "")
		case "url":
			urls++
			if urls > 1 || h.Check == "tcp" {
				b.Drop(d.Pos(), d.Text()+" {...}", "halb's http check requests one path", "")
				continue
			}
			// keepalived passes any 2xx when no status_code is given.
			h.ExpectStatus = config.StatusCodes{{Lo: 200, Hi: 299}}
			for _, e := range d.Block {
				ea := e.Args()
				switch e.Key() {
				case "path":
					if strings.HasPrefix(first(ea), "/") {
						h.Path = ea[0]
						continue
					}
					m.unknown(e)
				case "status_code":
					var sc config.StatusCodes
					if err := sc.UnmarshalText([]byte(strings.Join(ea, ","))); err != nil {
						m.unknown(e)
						continue
					}
					h.ExpectStatus = sc
				case "digest":
					b.Drop(e.Pos(), e.Text(), "halb does not compare a digest of the page", "expect_body: a string the page holds")
				case "virtualhost":
					h.Host = first(ea)
				default:
					m.unknown(e)
				}
			}
		case "virtualhost":
			h.Host = first(a)
		case "bindto", "bind_port", "connect_ip", "bind_if", "fwmark", "warmup", "http_protocol", "enable_sni", "tls_compliant":
			b.Drop(d.Pos(), d.Text(), "halb's checks go from the node to the server's address (or health.port)", "")
		default:
			m.unknown(d)
		}
	}
	return c
}

func sameHealth(a, b config.Health) bool {
	return a.Check == b.Check && a.Path == b.Path && a.Port == b.Port && a.Timeout == b.Timeout &&
		a.Fall == b.Fall && a.Host == b.Host && fmt.Sprint(a.ExpectStatus) == fmt.Sprint(b.ExpectStatus)
}

func (m *mapper) uniqueService(n string) string {
	n = sanitize(n)
	base := n
	for i := 2; ; i++ {
		taken := false
		for _, s := range m.b.Config.Services {
			taken = taken || s.Name == n
		}
		for _, s := range m.b.Config.Backends {
			taken = taken || s.Name == n
		}
		if !taken {
			return n
		}
		n = fmt.Sprintf("%s-%d", base, i)
	}
}
