package vrrp

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// HeardRouter is a VRRP router of another node, heard on a link.
type HeardRouter struct {
	Interface string
	VRID      int
	Version   int
	Priority  int
	Source    netip.Addr
	VIPs      []netip.Addr
	Interval  time.Duration
	Last      time.Time
}

// heard records the VRRP routers of other nodes heard on each link: every
// valid advertisement that reaches the node, whatever its VRID, from an
// address that is not one of the node's own. With it the console suggests
// a VRID no router on the link uses, and refuses one that is taken.
//
// The links where instances of this node run have a socket of their own
// already (mux.go): those sockets feed what they receive (hear), and the
// listener's socket skips their interfaces, so that each advert is
// received once.
type heard struct {
	mu  sync.Mutex
	m   map[heardKey]*HeardRouter
	now func() time.Time
	own map[netip.Addr]bool // the node's addresses, as the listener last read them

	// fmu guards, by family (0 IPv4, 1 IPv6): the interfaces the shared
	// sockets read (with how many sockets read each); and, while the
	// listener runs, its socket filter's setter and the interfaces'
	// indexes as it last read them (in its network namespace).
	fmu     sync.Mutex
	covered [2]map[string]int
	setSkip [2]func(skip []int) error
	index   [2]map[string]int
}

type heardKey struct {
	ifname string
	v6     bool
	vrid   int
	src    netip.Addr
}

func newHeard(now func() time.Time) *heard {
	return &heard{m: map[heardKey]*HeardRouter{}, now: now, own: map[netip.Addr]bool{},
		covered: [2]map[string]int{{}, {}}}
}

func famIndex(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}

// cover tells that a shared socket of the family reads ifname (on), or
// no longer does, and updates the listener's filter.
func (h *heard) cover(ifname string, v6 bool, on bool) {
	f := famIndex(v6)
	h.fmu.Lock()
	defer h.fmu.Unlock()
	if on {
		h.covered[f][ifname]++
	} else if h.covered[f][ifname]--; h.covered[f][ifname] <= 0 {
		delete(h.covered[f], ifname)
	}
	h.applySkip(f)
}

// applySkip sets the listener's filter of family f to skip the covered
// interfaces (best effort: one the listener has not seen yet is not
// skipped, and its adverts are recorded twice, which is harmless). fmu
// held.
func (h *heard) applySkip(f int) {
	if h.setSkip[f] == nil {
		return
	}
	var skip []int
	for name := range h.covered[f] {
		if ix, ok := h.index[f][name]; ok {
			skip = append(skip, ix)
		}
	}
	slices.Sort(skip)
	h.setSkip[f](skip)
}

// hear records a valid advert a shared socket received on ifname, as
// the listener does its own.
func (h *heard) hear(ifname string, src netip.Addr, ttl int, p *Packet) {
	if ttl != 255 {
		return
	}
	h.mu.Lock()
	own := h.own[src]
	h.mu.Unlock()
	if !own {
		h.record(ifname, src, p)
	}
}

// skipFilter is the listener's socket filter: it drops the packets that
// came in on the interfaces with these indexes (at most 255).
func skipFilter(skip []int) ([]bpf.RawInstruction, error) {
	if len(skip) > 255 {
		skip = skip[:255]
	}
	prog := []bpf.Instruction{bpf.LoadExtension{Num: bpf.ExtInterfaceIndex}}
	// Each match jumps over the remaining tests and the accept.
	for i, ix := range skip {
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(ix), SkipTrue: uint8(len(skip) - i)})
	}
	prog = append(prog,
		bpf.RetConstant{Val: 1 << 16},
		bpf.RetConstant{Val: 0})
	return bpf.Assemble(prog)
}

func (h *heard) record(ifname string, src netip.Addr, p *Packet) {
	k := heardKey{ifname, src.Is6(), int(p.VRID), src}
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.m[k]; r != nil && r.Version == p.Version && r.Priority == int(p.Priority) &&
		r.Interval == p.MaxAdvertInterval && slices.Equal(r.VIPs, p.Addrs) {
		r.Last = h.now() // the same router again: no copy
		return
	}
	h.m[k] = &HeardRouter{Interface: ifname, VRID: int(p.VRID), Version: p.Version, Priority: int(p.Priority),
		Source: src, VIPs: slices.Clone(p.Addrs), Interval: p.MaxAdvertInterval, Last: h.now()}
}

// list returns the routers heard recently: within three of their
// advertisement intervals (a router that stopped is forgotten as its
// backups would declare it dead), at least 3 s.
func (h *heard) list() []HeardRouter {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []HeardRouter
	for k, r := range h.m {
		if now.Sub(r.Last) > max(3*r.Interval, 3*time.Second)+time.Second {
			delete(h.m, k)
			continue
		}
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b HeardRouter) int {
		if a.Interface != b.Interface {
			if a.Interface < b.Interface {
				return -1
			}
			return 1
		}
		return a.VRID - b.VRID
	})
	return out
}

// listen follows the VRRP advertisements that reach the node on every
// interface, IPv4 and IPv6, until ctx ends. It joins the VRRP groups on
// each multicast interface (again as interfaces come), so that it hears
// routers even where no instance of this node runs.
func (h *heard) listen(ctx context.Context, log *slog.Logger) {
	var wg sync.WaitGroup
	for _, v6 := range []bool{false, true} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.listenFamily(ctx, v6); err != nil && ctx.Err() == nil {
				log.Warn("VRRP routers of other nodes are not followed", "ipv6", v6, "err", err)
			}
		}()
	}
	wg.Wait()
}

// heardRejoin is how often new interfaces are joined and the node's own
// addresses are read again.
const heardRejoin = 5 * time.Second

func (h *heard) listenFamily(ctx context.Context, v6 bool) error {
	network, group := "ip4:112", MulticastIPv4
	if v6 {
		network, group = "ip6:112", MulticastIPv6
	}
	c, err := net.ListenPacket(network, "")
	if err != nil {
		return err
	}
	defer c.Close()
	go func() { <-ctx.Done(); c.Close() }()
	sc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		return err
	}
	var p4 *ipv4.PacketConn
	var p6 *ipv6.PacketConn
	var setBPF func([]bpf.RawInstruction) error
	if v6 {
		p6 = ipv6.NewPacketConn(c)
		if err := p6.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
			return err
		}
		setBPF = p6.SetBPF
	} else {
		p4 = ipv4.NewPacketConn(c)
		if err := p4.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
			return err
		}
		setBPF = p4.SetBPF
	}
	f := famIndex(v6)
	h.fmu.Lock()
	h.index[f] = map[string]int{}
	h.setSkip[f] = func(skip []int) error {
		prog, err := skipFilter(skip)
		if err != nil {
			return err
		}
		return setBPF(prog)
	}
	h.fmu.Unlock()
	// Until the first refresh sets the filter: nothing, and nothing of
	// what came before it was attached.
	drop, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err == nil {
		err = setBPF(drop)
	}
	if err != nil {
		return err
	}
	buf := make([]byte, 1500)
	sc.Control(func(fd uintptr) {
		for {
			if _, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT); err != nil {
				return
			}
		}
	})
	defer func() {
		h.fmu.Lock()
		h.setSkip[f], h.index[f] = nil, nil
		h.fmu.Unlock()
	}()
	joined := map[int]bool{}
	own := map[netip.Addr]bool{}
	names := map[int]string{}
	var next time.Time
	refresh := func() {
		ifs, err := net.Interfaces()
		if err != nil {
			return
		}
		// Before joining: the covered links' adverts stay out.
		h.fmu.Lock()
		clear(h.index[f])
		for _, ifi := range ifs {
			h.index[f][ifi.Name] = ifi.Index
		}
		h.applySkip(f) // an interface recreated has a new index
		h.fmu.Unlock()
		clear(own)
		for _, ifi := range ifs {
			names[ifi.Index] = ifi.Name
			if addrs, err := ifi.Addrs(); err == nil {
				for _, a := range addrs {
					if ipn, ok := a.(*net.IPNet); ok {
						own[ipOfSlice(ipn.IP)] = true
					}
				}
			}
			if joined[ifi.Index] || ifi.Flags&net.FlagMulticast == 0 || ifi.Flags&net.FlagUp == 0 {
				continue
			}
			g := &net.IPAddr{IP: group.AsSlice()}
			if v6 {
				err = p6.JoinGroup(&ifi, g)
			} else {
				err = p4.JoinGroup(&ifi, g)
			}
			joined[ifi.Index] = err == nil
		}
		h.mu.Lock()
		h.own = maps.Clone(own)
		h.mu.Unlock()
	}
	r := newBatchReader(sc, v6)
	for {
		if now := time.Now(); now.After(next) {
			refresh()
			next = now.Add(heardRejoin)
		}
		if !r.buffered() {
			c.SetReadDeadline(time.Now().Add(heardRejoin))
		}
		n, src, dst, ttl, ifindex, err := r.read(buf, 0)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if ttl != 255 || own[src] || names[ifindex] == "" {
			continue
		}
		p, err := Parse(buf[:n], src, dst)
		if err != nil {
			continue
		}
		h.record(names[ifindex], src, p)
	}
}
