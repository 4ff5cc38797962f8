package netlab

// Hostile VRRP traffic: malformed and foreign adverts injected onto the LAN
// from a host that is not a VRRP router. halbd must not crash, must not
// change state, and must count each packet under its drop reason. A
// well-formed advert from the same injector is the control: it does move
// the master, so the checks, not a broken injector, stop the others.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"halb/appliance/api"
	"halb/appliance/vrrp"
)

// hostileStatus is one VRRP instance of halbd's status. It embeds
// vrrp.InstanceStatus for the counters and drops but reads the state and
// the last transition as text: vrrp.State marshals as its name and has no
// UnmarshalText, so []vrrp.InstanceStatus alone cannot decode the status
// (the shallower fields here shadow the embedded ones).
type hostileStatus struct {
	vrrp.InstanceStatus
	State          string `json:"state"`
	LastTransition *struct {
		Reason string    `json:"Reason"`
		At     time.Time `json:"At"`
	} `json:"last_transition"`
}

func (s hostileStatus) reason() string {
	if s.LastTransition == nil {
		return ""
	}
	return s.LastTransition.Reason
}

// hostileVRRP reads node n's only VRRP instance through halbd's control socket.
func hostileVRRP(n *Node) (hostileStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cl := api.NewClient(filepath.Join(n.Dir, "halb.sock"))
	defer cl.Close()
	st, err := cl.Status(ctx)
	if err != nil {
		return hostileStatus{}, err
	}
	var ins []hostileStatus
	if err := json.Unmarshal(st.VRRP, &ins); err != nil {
		return hostileStatus{}, fmt.Errorf("%s: decode vrrp status %s: %w", n.Host.Name, st.VRRP, err)
	}
	if len(ins) != 1 {
		return hostileStatus{}, fmt.Errorf("%s: %d VRRP instances in status, want 1", n.Host.Name, len(ins))
	}
	return ins[0], nil
}

func mustHostileVRRP(t *testing.T, n *Node) hostileStatus {
	t.Helper()
	s, err := hostileVRRP(n)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hostileInjector writes raw IPv4 packets of protocol 112 from inside a host,
// the whole IP header included (IP_HDRINCL): TTL and source are the
// caller's, per packet.
type hostileInjector struct {
	rc  *ipv4.RawConn
	ifi *net.Interface
}

func newHostileInjector(t *testing.T, h *Host, ifname string) *hostileInjector {
	t.Helper()
	j := &hostileInjector{}
	err := h.Do(func() error {
		c, err := net.ListenPacket(fmt.Sprintf("ip4:%d", vrrp.ProtocolNumber), "0.0.0.0")
		if err != nil {
			return err
		}
		rc, err := ipv4.NewRawConn(c)
		if err != nil {
			c.Close()
			return err
		}
		j.rc = rc
		if j.ifi, err = net.InterfaceByName(ifname); err != nil { // this namespace's
			return err
		}
		if err := rc.SetMulticastInterface(j.ifi); err != nil {
			return err
		}
		return rc.SetMulticastLoopback(false)
	})
	if j.rc != nil {
		t.Cleanup(func() { j.rc.Close() }) // before the lab removes the host
	}
	if err != nil {
		t.Fatalf("injector on %s: %v", h.Name, err)
	}
	return j
}

// send writes msg as the payload of one IPv4 packet from src to dst with
// the given TTL (the kernel fills in the total length, ID and header checksum).
func (j *hostileInjector) send(t *testing.T, src, dst netip.Addr, ttl int, msg []byte) {
	t.Helper()
	j.sendFrags(t, src, dst, ttl, nil, msg, len(msg), 0)
}

// sendFrags writes msg as one IPv4 datagram in fragments of at most frag
// bytes of payload each (a multiple of 8 but for the last), the first
// carrying opts (a multiple of 4 bytes) as IP options. id 0 lets the kernel
// pick one (fine for a single fragment only).
func (j *hostileInjector) sendFrags(t *testing.T, src, dst netip.Addr, ttl int, opts, msg []byte, frag, id int) {
	t.Helper()
	for off := 0; off < len(msg); off += frag {
		end := min(off+frag, len(msg))
		h := &ipv4.Header{
			Version:  ipv4.Version,
			Len:      ipv4.HeaderLen,
			TOS:      0xc0, // internetwork control, as VRRP routers send
			ID:       id,
			FragOff:  off / 8,
			TTL:      ttl,
			Protocol: vrrp.ProtocolNumber,
			Src:      src.AsSlice(),
			Dst:      dst.AsSlice(),
		}
		if off == 0 {
			h.Options = opts
			h.Len += len(opts)
		}
		if end < len(msg) {
			h.Flags = ipv4.MoreFragments
		}
		h.TotalLen = h.Len + end - off
		if err := j.rc.WriteTo(h, msg[off:end], &ipv4.ControlMessage{IfIndex: j.ifi.Index}); err != nil {
			t.Fatalf("inject %d bytes at %d %s → %s ttl %d: %v", end-off, off, src, dst, ttl, err)
		}
	}
}

// hostileAdvert is a well-formed VRRPv3 advert from src to dst.
func hostileAdvert(t *testing.T, version int, vrid, prio uint8, vip, src, dst netip.Addr) []byte {
	t.Helper()
	p := vrrp.Packet{Version: version, VRID: vrid, Priority: prio, MaxAdvertInterval: time.Second, Addrs: []netip.Addr{vip}}
	b, err := p.Marshal(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hostileFixChecksum rewrites the VRRPv3 checksum of msg (at least 8 bytes,
// any length) over its bytes as they are and the IPv4 pseudo-header, so a
// corrupted message fails only the check it was built for.
func hostileFixChecksum(msg []byte, src, dst netip.Addr) []byte {
	s, d := src.As4(), dst.As4()
	var sum uint32
	add := func(b []byte) {
		for ; len(b) >= 2; b = b[2:] {
			sum += uint32(b[0])<<8 | uint32(b[1])
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	add(s[:])
	add(d[:])
	sum += vrrp.ProtocolNumber + uint32(len(msg))
	add(msg[:6])
	add(msg[8:])
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(msg[6:8], ^uint16(sum))
	return msg
}

// hostileCase is one kind of hostile packet and the drop reason it must be
// counted under ("" when it must be ignored without a drop).
type hostileCase struct {
	name   string
	ttl    int
	reason string
	msg    []byte
}

// hostileCases are the packets injected from src on the front LAN against
// the instance of vrid holding vip. The wrong-VRID packet comes first and
// the wrong-TTL one last: both are judged in the instance's main loop after
// every parse failure before them, so once the TTL drops are all counted,
// every packet of the round has been handled.
func hostileCases(t *testing.T, vrid uint8, vip, src, dst netip.Addr) []hostileCase {
	good := func() []byte { return hostileAdvert(t, 3, vrid, 254, vip, src, dst) }
	fix := func(b []byte) []byte { return hostileFixChecksum(b, src, dst) }

	badSum := good()
	badSum[6] ^= 0x5a
	badSum[7] ^= 0xa5

	hugeCount := good()
	hugeCount[3] = 255 // 255 addresses announced, one carried

	garbage := append(good(), 0xde, 0xad, 0xbe, 0xef)

	v4 := good()
	v4[0] = 4<<4 | vrrp.TypeAdvertisement

	badType := good()
	badType[0] = 3<<4 | 2

	noAddrs := good()
	noAddrs[3] = 0

	noInterval := good()
	noInterval[4], noInterval[5] = 0, 0

	return []hostileCase{
		{"wrong VRID", 255, "", hostileAdvert(t, 3, vrid+1, 254, vip, src, dst)},
		{"bad checksum", 255, "checksum", badSum},
		{"truncated to 6 bytes", 255, "short", good()[:6]},
		{"count 255, one address", 255, "short", fix(hugeCount)},
		{"trailing garbage", 255, "length", fix(garbage)},
		{"version 4", 255, "version", fix(v4)},
		{"VRRPv2 to a v3 instance", 255, "version", hostileAdvert(t, 2, vrid, 254, vip, src, dst)},
		{"type 2", 255, "type", fix(badType)},
		{"no addresses", 255, "addr_count", fix(noAddrs)},
		{"interval 0", 255, "interval", fix(noInterval)},
		{"TTL 64", 64, "ttl", good()},
	}
}

// hostileAddDrops returns base with n more drops under each case's reason.
func hostileAddDrops(base map[string]uint, cases []hostileCase, n uint) map[string]uint {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]uint{}
	}
	for _, c := range cases {
		if c.reason != "" {
			out[c.reason] += n
		}
	}
	return out
}

func hostileDropsReached(got, want map[string]uint) bool {
	for k, v := range want {
		if got[k] < v {
			return false
		}
	}
	return true
}

func hostileSumDrops(m map[string]uint) uint64 {
	var n uint64
	for _, v := range m {
		n += uint64(v)
	}
	return n
}

// hostileWait polls node n's status until cond holds or timeout passes, and
// returns the last status read.
func hostileWait(n *Node, timeout time.Duration, cond func(hostileStatus) bool) (hostileStatus, bool) {
	var last hostileStatus
	ok := WaitFor(timeout, func() bool {
		s, err := hostileVRRP(n)
		if err != nil {
			return false
		}
		last = s
		return cond(s)
	})
	return last, ok
}

func TestHostileVRRPPackets(t *testing.T) {
	l := New(t)
	c, err := NewClassic(l, ClassicOptions{Flavor: FlavorHalb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.WaitConverged(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	lb1, lb2 := c.LB[0], c.LB[1]
	lb1Addr := netip.MustParseAddr("192.168.10.1")
	src := c.Client.Addr("eth0", 4) // 192.168.10.10
	group := vrrp.MulticastIPv4

	// lb2 has heard lb1 (Master set) before the baseline is taken.
	base2, ok := hostileWait(lb2, 5*time.Second, func(s hostileStatus) bool {
		return s.State == "BACKUP" && s.Master == lb1Addr.String()
	})
	if !ok {
		t.Fatalf("lb2 before injection: state %s, master %q; want BACKUP under %s", base2.State, base2.Master, lb1Addr)
	}
	base1 := mustHostileVRRP(t, lb1)
	if base1.State != "MASTER" {
		t.Fatalf("lb1 before injection: state %s, want MASTER", base1.State)
	}

	inj := newHostileInjector(t, c.Client, "eth0")
	cases := hostileCases(t, 51, c.VIP, src, group)
	const rounds = 5

	p := c.StartProbe(context.Background(), false)
	probeStopped := false
	defer func() {
		if !probeStopped {
			p.Stop()
		}
	}()
	if !WaitFor(5*time.Second, func() bool { return p.Snapshot().OK > 0 }) {
		t.Fatalf("probe: no answer through the VIP before the injection: %+v", p.Snapshot())
	}

	// One round every 200ms: the probe watches a second of hostile traffic
	// (about 200 requests), not a burst it could miss.
	tick := time.NewTicker(200 * time.Millisecond)
	for i := range rounds {
		if i > 0 {
			<-tick.C
		}
		for _, hc := range cases {
			inj.send(t, src, group, hc.ttl, hc.msg)
		}
	}
	tick.Stop()

	// Both nodes are on the LAN: both count every multicast packet.
	want1 := hostileAddDrops(base1.Drops, cases, rounds)
	want2 := hostileAddDrops(base2.Drops, cases, rounds)
	s1, ok1 := hostileWait(lb1, 5*time.Second, func(s hostileStatus) bool { return hostileDropsReached(s.Drops, want1) })
	s2, ok2 := hostileWait(lb2, 5*time.Second, func(s hostileStatus) bool { return hostileDropsReached(s.Drops, want2) })
	res := p.Stop()
	probeStopped = true

	for _, x := range []struct {
		n          *Node
		ok         bool
		base, now  hostileStatus
		want       map[string]uint
		wantState  string
		wantMaster string
	}{
		{lb1, ok1, base1, s1, want1, "MASTER", ""},
		{lb2, ok2, base2, s2, want2, "BACKUP", lb1Addr.String()},
	} {
		name := x.n.Host.Name
		if !x.ok {
			t.Errorf("%s: drops %v after 5s, want %v", name, x.now.Drops, x.want)
		} else if !maps.Equal(x.now.Drops, x.want) {
			t.Errorf("%s: drops %v, want exactly %v (the wrong-VRID advert is no drop)", name, x.now.Drops, x.want)
		}
		if got, want := x.now.Counters.Dropped-x.base.Counters.Dropped, hostileSumDrops(x.want)-hostileSumDrops(x.base.Drops); got != want {
			t.Errorf("%s: dropped counter rose by %d, want %d", name, got, want)
		}
		if !x.n.Running() {
			t.Errorf("%s: halbd died during the injection", name)
		}
		if x.now.State != x.wantState {
			t.Errorf("%s: state %s after the injection, want %s", name, x.now.State, x.wantState)
		}
		if x.now.Counters.Transitions != x.base.Counters.Transitions {
			t.Errorf("%s: %d transitions during the injection (last: %s)", name,
				x.now.Counters.Transitions-x.base.Counters.Transitions, x.now.reason())
		}
		if x.wantMaster != "" && x.now.Master != x.wantMaster {
			t.Errorf("%s: master %q after the injection, want %s", name, x.now.Master, x.wantMaster)
		}
		if x.now.Error != "" {
			t.Errorf("%s: instance error %q", name, x.now.Error)
		}
	}
	// lb1 hears no valid advert in steady state (lb2 is a silent backup):
	// none of the injected packets, the wrong-VRID ones included, may have
	// been taken as an advert.
	if s1.Counters.AdvertsReceived != base1.Counters.AdvertsReceived {
		t.Errorf("lb1: %d adverts received during the injection, want none",
			s1.Counters.AdvertsReceived-base1.Counters.AdvertsReceived)
	}
	if !slices.Equal(s1.HeldVIPs, []string{ClassicVIP + "/24"}) {
		t.Errorf("lb1: holds %v, want [%s/24]", s1.HeldVIPs, ClassicVIP)
	}
	if h := c.VIPHolders(); !slices.Equal(h, []string{"lb1"}) {
		t.Errorf("VIP holders %v after the injection, want [lb1]", h)
	}
	if res.Sent == 0 || res.Failed > 0 {
		t.Errorf("probe during the injection: %d of %d failed (%s)", res.Failed, res.Sent, firstError(res))
	}
	t.Logf("injected %d packets (%d kinds × %d); lb1 drops %v, lb2 drops %v; probe %d/%d OK",
		len(cases)*rounds, len(cases), rounds, s1.Drops, s2.Drops, res.OK, res.Sent)
	if t.Failed() {
		return
	}

	// Control: the same injector, a well-formed priority-254 advert with
	// TTL 255. lb1 (150) must yield to it.
	good := hostileAdvert(t, 3, 51, 254, c.VIP, src, group)
	for range 3 {
		inj.send(t, src, group, 255, good)
	}
	s1, ok = hostileWait(lb1, 5*time.Second, func(s hostileStatus) bool {
		return s.Counters.Transitions > base1.Counters.Transitions && strings.Contains(s.reason(), src.String())
	})
	if !ok {
		t.Fatalf("control: lb1 did not step down for a priority-254 advert from %s (state %s, last transition %q): the injector does not reach halbd",
			src, s1.State, s1.reason())
	}
	t.Logf("control: lb1 stepped down: %s", s1.reason())
	// Once the stranger is quiet, lb1 preempts back.
	if !WaitFor(15*time.Second, func() bool {
		s, err := hostileVRRP(lb1)
		return err == nil && s.State == "MASTER" && slices.Equal(c.VIPHolders(), []string{"lb1"})
	}) {
		t.Errorf("after the control: VIP holders %v, want lb1 back as MASTER", c.VIPHolders())
	}
	for _, n := range c.LB {
		if !n.Running() {
			t.Errorf("%s: halbd died", n.Host.Name)
		}
	}
}

// hostileUnicastConfig is a halb config of one VRRP instance sending to peer only.
func hostileUnicastConfig(name string, prio int, peer, vip string) []byte {
	return fmt.Appendf(nil, `node: {name: %s}
vrrp:
  - name: front
    interface: eth0
    vrid: 51
    priority: %d
    advert_interval: 1s
    preempt: true
    unicast_peers: [%s]
    vips: [%s/24]
`, name, prio, peer, vip)
}

// TestHostileVRRPUnicastStranger: in unicast mode only the configured peers
// may speak. A priority-255 advert from a stranger on the LAN, sent to the
// nodes' own addresses and to the group, is dropped as unknown_peer and
// changes nothing. Control: the same advert with the peer's source address
// (spoofed through the raw socket) does make the master yield.
func TestHostileVRRPUnicastStranger(t *testing.T) {
	l := New(t)
	lan, err := l.AddLAN("front")
	if err != nil {
		t.Fatal(err)
	}
	addrs := []string{"192.168.20.1", "192.168.20.2"}
	const vipS, strangerS = "192.168.20.100", "192.168.20.9"
	var nodes [2]*Node
	for i, name := range []string{"lb1", "lb2"} {
		h, err := l.AddHost(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Connect(lan, "eth0", addrs[i]+"/24"); err != nil {
			t.Fatal(err)
		}
		if nodes[i], err = l.StartNode(h, FlavorHalb, hostileUnicastConfig(name, 150-50*i, addrs[1-i], vipS)); err != nil {
			t.Fatal(err)
		}
	}
	stranger, err := l.AddHost("stranger")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stranger.Connect(lan, "eth0", strangerS+"/24"); err != nil {
		t.Fatal(err)
	}
	lb1, lb2 := nodes[0], nodes[1]
	vip := netip.MustParseAddr(vipS)
	a1, a2 := netip.MustParseAddr(addrs[0]), netip.MustParseAddr(addrs[1])
	src := netip.MustParseAddr(strangerS)

	if !WaitFor(15*time.Second, func() bool {
		s1, err1 := hostileVRRP(lb1)
		s2, err2 := hostileVRRP(lb2)
		return err1 == nil && err2 == nil && s1.State == "MASTER" && s2.State == "BACKUP" &&
			s2.Master == a1.String() && lb1.HoldsVIP(vip) && !lb2.HoldsVIP(vip)
	}) {
		s1, _ := hostileVRRP(lb1)
		s2, _ := hostileVRRP(lb2)
		t.Fatalf("unicast pair did not converge: lb1 %s, lb2 %s (master %q)", s1.State, s2.State, s2.Master)
	}
	base1, base2 := mustHostileVRRP(t, lb1), mustHostileVRRP(t, lb2)

	inj := newHostileInjector(t, stranger, "eth0")
	const rounds = 5
	// Each node gets its unicast copy and the group's: 2 per round.
	for range rounds {
		for _, dst := range []netip.Addr{a1, a2, vrrp.MulticastIPv4} {
			inj.send(t, src, dst, 255, hostileAdvert(t, 3, 51, 255, vip, src, dst))
		}
	}
	var s1, s2 hostileStatus
	for _, x := range []struct {
		n    *Node
		base hostileStatus
		out  *hostileStatus
	}{{lb1, base1, &s1}, {lb2, base2, &s2}} {
		want := maps.Clone(x.base.Drops)
		if want == nil {
			want = map[string]uint{}
		}
		want["unknown_peer"] += 2 * rounds
		s, ok := hostileWait(x.n, 5*time.Second, func(s hostileStatus) bool { return hostileDropsReached(s.Drops, want) })
		*x.out = s
		name := x.n.Host.Name
		if !ok || !maps.Equal(s.Drops, want) {
			t.Errorf("%s: drops %v, want %v", name, s.Drops, want)
		}
		if s.Counters.Transitions != x.base.Counters.Transitions {
			t.Errorf("%s: %d transitions during the injection (last: %s)", name,
				s.Counters.Transitions-x.base.Counters.Transitions, s.reason())
		}
		if !x.n.Running() {
			t.Errorf("%s: halbd died during the injection", name)
		}
	}
	if s1.State != "MASTER" || !lb1.HoldsVIP(vip) {
		t.Errorf("lb1: state %s, holds VIP %v; want MASTER holding it", s1.State, lb1.HoldsVIP(vip))
	}
	if s2.State != "BACKUP" || lb2.HoldsVIP(vip) || s2.Master != a1.String() {
		t.Errorf("lb2: state %s, holds VIP %v, master %q; want BACKUP under %s", s2.State, lb2.HoldsVIP(vip), s2.Master, a1)
	}
	if s1.Counters.AdvertsReceived != base1.Counters.AdvertsReceived {
		t.Errorf("lb1: %d adverts received from the stranger", s1.Counters.AdvertsReceived-base1.Counters.AdvertsReceived)
	}
	// The legitimate peer is still heard: lb1's adverts keep arriving at lb2.
	if s, ok := hostileWait(lb2, 5*time.Second, func(s hostileStatus) bool {
		return s.Counters.AdvertsReceived >= base2.Counters.AdvertsReceived+2
	}); !ok {
		t.Errorf("lb2: adverts received %d → %d, want lb1's adverts to keep arriving",
			base2.Counters.AdvertsReceived, s.Counters.AdvertsReceived)
	}
	t.Logf("stranger: %d priority-255 adverts; lb1 drops %v, lb2 drops %v", 3*rounds, s1.Drops, s2.Drops)
	if t.Failed() {
		return
	}

	// Control: the same advert with lb2's address as source reaches lb1
	// past the peer check and makes it yield.
	for range 3 {
		inj.send(t, a2, a1, 255, hostileAdvert(t, 3, 51, 255, vip, a2, a1))
	}
	s1, ok := hostileWait(lb1, 5*time.Second, func(s hostileStatus) bool {
		return s.Counters.Transitions > base1.Counters.Transitions && strings.Contains(s.reason(), a2.String())
	})
	if !ok {
		t.Fatalf("control: lb1 did not yield to a priority-255 advert from its peer's address (state %s, last transition %q)", s1.State, s1.reason())
	}
	t.Logf("control: lb1 stepped down: %s", s1.reason())
	if !WaitFor(15*time.Second, func() bool {
		s, err := hostileVRRP(lb1)
		return err == nil && s.State == "MASTER" && lb1.HoldsVIP(vip) && !lb2.HoldsVIP(vip)
	}) {
		t.Errorf("after the control: lb1 not MASTER alone again (lb1 holds %v, lb2 holds %v)", lb1.HoldsVIP(vip), lb2.HoldsVIP(vip))
	}
	for _, n := range nodes {
		if !n.Running() {
			t.Errorf("%s: halbd died", n.Host.Name)
		}
	}
}

// TestHostileVRRPIPOptions: adverts whose IPv4 header carries options
// (Router Alert here), and datagrams reassembled from fragments to more
// than the receive buffer. Their VRRP payload must be judged like any
// other: a wrong TTL is "ttl", an oversized datagram "length", and halbd
// must survive all of them. Control: a well-formed priority-254 advert with
// the option and TTL 255 makes lb1 yield.
//
// This found a real bug: with golang.org/x/net v0.22.0,
// ipv4.PacketConn.ReadFrom on a raw socket subtracted only the options'
// length from n when the header had options, so halbd saw 20 stale bytes
// after every such payload (a well-formed advert was dropped as "length"),
// and a reassembled datagram of 1520 bytes or more made n exceed the
// buffer: halbd died on every node of the LAN from one multicast datagram.
// Fixed by x/net v0.62.0 and by clamping n in rawConn.Recv.
func TestHostileVRRPIPOptions(t *testing.T) {
	SkipUnlessRoot(t)
	l := New(t)
	c, err := NewClassic(l, ClassicOptions{Flavor: FlavorHalb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.WaitConverged(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	lb1, lb2 := c.LB[0], c.LB[1]
	src := c.Client.Addr("eth0", 4)
	group := vrrp.MulticastIPv4
	base := [2]hostileStatus{mustHostileVRRP(t, lb1), mustHostileVRRP(t, lb2)}
	if base[0].State != "MASTER" || base[1].State != "BACKUP" {
		t.Fatalf("before injection: lb1 %s, lb2 %s", base[0].State, base[1].State)
	}

	inj := newHostileInjector(t, c.Client, "eth0")
	routerAlert := []byte{0x94, 0x04, 0, 0} // RFC 2113
	good := hostileAdvert(t, 3, 51, 254, c.VIP, src, group)
	big := append(slices.Clone(good), make([]byte, 3000)...) // 3012 bytes: three fragments
	id := 0x4800
	const rounds = 5
	for range rounds {
		id++
		inj.sendFrags(t, src, group, 255, nil, big, 1400, id) // fragments, no options
		id++
		inj.sendFrags(t, src, group, 255, routerAlert, big, 1400, id) // fragments, options
		inj.sendFrags(t, src, group, 64, routerAlert, good, len(good), 0)
	}
	for i, n := range c.LB {
		want := maps.Clone(base[i].Drops)
		if want == nil {
			want = map[string]uint{}
		}
		want["length"] += 2 * rounds
		want["ttl"] += rounds
		s, ok := hostileWait(n, 5*time.Second, func(s hostileStatus) bool { return hostileDropsReached(s.Drops, want) })
		name := n.Host.Name
		if !n.Running() {
			t.Errorf("%s: halbd died:\n%s", name, n.Processes()[0].Log())
			continue
		}
		if !ok || !maps.Equal(s.Drops, want) {
			t.Errorf("%s: drops %v, want %v", name, s.Drops, want)
		}
		if s.State != base[i].State || s.Counters.Transitions != base[i].Counters.Transitions {
			t.Errorf("%s: state %s after %d transitions, want %s unchanged (last: %s)", name, s.State,
				s.Counters.Transitions-base[i].Counters.Transitions, base[i].State, s.reason())
		}
	}
	if h := c.VIPHolders(); !slices.Equal(h, []string{"lb1"}) {
		t.Errorf("VIP holders %v, want [lb1]", h)
	}
	if t.Failed() {
		return
	}

	// Control: options do not make a valid advert invalid.
	for range 3 {
		inj.sendFrags(t, src, group, 255, routerAlert, good, len(good), 0)
	}
	s1, ok := hostileWait(lb1, 5*time.Second, func(s hostileStatus) bool {
		return s.Counters.Transitions > base[0].Counters.Transitions && strings.Contains(s.reason(), src.String())
	})
	if !ok {
		t.Fatalf("control: lb1 did not yield to a priority-254 advert with IP options (state %s, drops %v)", s1.State, s1.Drops)
	}
	if !WaitFor(15*time.Second, func() bool {
		s, err := hostileVRRP(lb1)
		return err == nil && s.State == "MASTER" && slices.Equal(c.VIPHolders(), []string{"lb1"})
	}) {
		t.Errorf("after the control: VIP holders %v, want lb1 back as MASTER", c.VIPHolders())
	}
}
