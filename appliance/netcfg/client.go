package netcfg

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// dhcpClient drives one machine on one link: it owns the sockets (an
// nclient4 client on a raw socket for broadcasts, another on a UDP socket
// bound to the leased address for unicasts), the timer and the link
// watch, and carries out the machine's actions through the kernel door.
type dhcpClient struct {
	ifname string
	k      *kernel
	opts   *Options
	metric int
	log    *slog.Logger
	// changed is called (without locks held) after the lease in force
	// changed: the manager rewrites resolv.conf and status.
	changed func()
	// release makes the orderly stop send RELEASE and remove the address
	// (set before the context is cancelled).
	release atomic.Bool

	mu    sync.Mutex
	lease *dhcpLease
	state string
	mac   net.HardwareAddr
	err   string

	// Owned by run's goroutine.
	m       *machine
	link    netlink.Link
	raw     *nclient4.Client
	rawConn net.PacketConn
	uni     *nclient4.Client
	uniConn net.PacketConn
	uniAddr netip.Addr
	pkts    chan []byte
	xchg    context.CancelFunc
	xchgWG  sync.WaitGroup
	// events wait in do until the state they tell of is in status.
	events [][2]string
}

// openRaw opens the broadcast socket and its nclient4 client.
func (c *dhcpClient) openRaw() error {
	if err := c.k.inNS(func() (err error) {
		c.rawConn, err = nclient4.NewRawUDPConn(c.ifname, nclient4.ClientPort)
		return err
	}); err != nil {
		return fmt.Errorf("netcfg: dhcp socket on %s: %w", c.ifname, err)
	}
	raw, err := nclient4.NewWithConn(c.rawConn, c.link.Attrs().HardwareAddr, nclient4.WithTimeout(24*time.Hour), nclient4.WithRetry(1))
	if err != nil {
		c.rawConn.Close()
		return fmt.Errorf("netcfg: dhcp client on %s: %w", c.ifname, err)
	}
	c.raw = raw
	return nil
}

// snapshot is the client's state for Status.
func (c *dhcpClient) snapshot() (*dhcpLease, string, net.HardwareAddr, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var l *dhcpLease
	if c.lease != nil {
		cp := *c.lease
		l = &cp
	}
	return l, c.state, c.mac, c.err
}

func (c *dhcpClient) setErr(err error) {
	c.mu.Lock()
	c.err = ""
	if err != nil {
		c.err = err.Error()
	}
	c.mu.Unlock()
}

// run works the lease until ctx ends, then stops: with RELEASE when
// c.release is set, else keeping the address and the lease file for the
// next start's INIT-REBOOT.
func (c *dhcpClient) run(ctx context.Context) error {
	links := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	defer close(done)
	if err := c.k.subscribeLinks(links, done); err != nil {
		return err
	}
	// Wait for the link to exist.
	for {
		l, err := c.k.link(c.ifname)
		if err == nil {
			c.link = l
			break
		}
		c.setErr(err)
		select {
		case <-ctx.Done():
			return nil
		case <-links:
		case <-time.After(5 * time.Second):
		}
	}
	c.setErr(nil)
	if set, err := c.k.ensureUp(c.link); err != nil {
		c.setErr(err)
	} else if set {
		c.log.Info("link set up", "interface", c.ifname)
		if l, err := c.k.link(c.ifname); err == nil {
			c.link = l
		}
	}
	a := c.link.Attrs()
	c.mu.Lock()
	c.mac = a.HardwareAddr
	c.mu.Unlock()
	if err := c.openRaw(); err != nil {
		return err
	}
	defer c.closeSockets()

	saved, err := loadLease(c.opts.StateDir, c.ifname)
	if err != nil {
		c.log.Warn("ignoring the saved lease", "err", err)
	}
	c.m = newMachine(c.ifname, a.HardwareAddr, c.opts.timing, saved)
	c.pkts = make(chan []byte, 16)
	clk := c.opts.Clock
	up := carrier(c.link)
	if !up {
		c.do(c.m.step(event{Kind: evLinkDown, Now: clk.Now()}))
	}
	c.do(c.m.step(event{Kind: evStart, Now: clk.Now()}))
	for {
		var timer <-chan time.Time
		if d := c.m.deadline(); !d.IsZero() {
			timer = clk.After(max(d.Sub(clk.Now()), 0))
		}
		select {
		case <-ctx.Done():
			c.stopExchange()
			if c.release.Load() {
				c.do(c.m.step(event{Kind: evRelease, Now: clk.Now()}))
			}
			return nil
		case <-timer:
			c.do(c.m.step(event{Kind: evTimer, Now: clk.Now()}))
		case b := <-c.pkts:
			c.do(c.m.step(event{Kind: evPacket, Now: clk.Now(), Data: b}))
		case u := <-links:
			if u.Attrs().Name != c.ifname {
				continue
			}
			c.link = u.Link
			now := carrier(u.Link)
			if now == up {
				continue
			}
			up = now
			kind := evLinkDown
			if up {
				kind = evLinkUp
				// A packet socket bound to a link that went down has
				// failed its reads (ENETDOWN ends nclient4's receive
				// loop): open the sockets anew.
				c.stopExchange()
				c.closeUnicast()
				if c.raw != nil {
					c.raw.Close()
					c.raw = nil
				}
				if err := c.openRaw(); err != nil {
					c.log.Error("reopen the dhcp socket", "err", err)
					c.setErr(err)
				}
			}
			c.event("network", fmt.Sprintf("%s: link %s", c.ifname, map[bool]string{true: "up", false: "down"}[up]))
			c.do(c.m.step(event{Kind: kind, Now: clk.Now()}))
		}
	}
}

func (c *dhcpClient) event(kind, msg string) {
	if c.opts.Events != nil {
		c.opts.Events(kind, msg)
	}
}

// do carries out the machine's actions in order.
func (c *dhcpClient) do(acts []action) {
	changed := false
	for _, a := range acts {
		switch a.Kind {
		case actLog:
			c.log.Log(context.Background(), a.Level, a.Text)
		case actSend:
			c.send(a)
		case actApply:
			if err := c.apply(a.Lease, a.Prev); err != nil {
				c.log.Error("apply lease", "err", err)
				c.setErr(err)
			} else {
				c.setErr(nil)
			}
			changed = true
		case actRemove:
			if err := c.remove(a.Lease); err != nil {
				c.log.Error("remove lease", "err", err)
				c.setErr(err)
			}
			c.events = append(c.events, [2]string{"dhcp", fmt.Sprintf("%s: %v removed (lease ended)", c.ifname, a.Lease.Address)})
			changed = true
		case actSave:
			if err := saveLease(c.opts.StateDir, c.ifname, a.Lease); err != nil {
				c.log.Error("save lease", "err", err)
			}
		}
	}
	c.mu.Lock()
	c.lease, c.state = c.m.lease(), c.m.state
	c.mu.Unlock()
	if changed && c.changed != nil {
		c.changed()
	}
	// After the status shows the lease: whoever hears of it (the daemon
	// hands the lease's NTP servers to the clock) reads the status.
	for _, e := range c.events {
		c.event(e[0], e[1])
	}
	c.events = c.events[:0]
}

func (c *dhcpClient) stopExchange() {
	if c.xchg != nil {
		c.xchg()
		c.xchgWG.Wait()
		c.xchg = nil
	}
}

// send transmits a machine's message and listens for the replies with its
// xid until the next send: nclient4 matches xid and chaddr, the machine
// judges the rest.
func (c *dhcpClient) send(a action) {
	c.stopExchange()
	cl := c.raw
	dest := &net.UDPAddr{IP: net.IPv4bcast, Port: nclient4.ServerPort}
	if a.Dest.IsValid() {
		dest.IP = net.IP(a.Dest.AsSlice())
		if u, err := c.unicast(a.Msg.ClientIPAddr); err == nil {
			cl = u
		} else {
			c.log.Warn("unicast socket unavailable: sending through the raw socket", "err", err)
		}
	}
	if cl == nil {
		c.log.Warn("no dhcp socket: not sent", "msg", a.Msg.MessageType().String())
		return
	}
	if a.Msg.MessageType() == dhcpv4.MessageTypeRelease {
		conn := c.rawConn
		if cl == c.uni {
			conn = c.uniConn
		}
		if _, err := conn.WriteTo(a.Msg.ToBytes(), dest); err != nil {
			c.log.Warn("send RELEASE", "err", err)
		}
		return
	}
	c.log.Debug("send", "msg", a.Msg.MessageType().String(), "to", dest.IP.String(), "xid", a.Msg.TransactionID.String())
	ctx, cancel := context.WithCancel(context.Background())
	c.xchg = cancel
	pkts := c.pkts
	c.xchgWG.Add(1)
	go func() {
		defer c.xchgWG.Done()
		_, err := cl.SendAndRead(ctx, dest, a.Msg, func(p *dhcpv4.DHCPv4) bool {
			select {
			case pkts <- p.ToBytes():
			case <-ctx.Done():
			}
			return false
		})
		if err != nil && ctx.Err() == nil {
			c.log.Warn("dhcp exchange", "err", err)
		}
	}()
}

// unicast is the client on a UDP socket bound to the leased address, for
// RENEWING and RELEASE: opened on first use, reopened when the address
// changes.
func (c *dhcpClient) unicast(ciaddr net.IP) (*nclient4.Client, error) {
	addr, ok := netip.AddrFromSlice(ciaddr.To4())
	if !ok || addr.IsUnspecified() {
		return nil, fmt.Errorf("no client address for a unicast")
	}
	if c.uni != nil && c.uniAddr == addr {
		return c.uni, nil
	}
	c.closeUnicast()
	conn, err := c.k.unicastConn(c.ifname, addr)
	if err != nil {
		return nil, err
	}
	u, err := nclient4.NewWithConn(conn, c.link.Attrs().HardwareAddr, nclient4.WithTimeout(24*time.Hour), nclient4.WithRetry(1))
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.uni, c.uniConn, c.uniAddr = u, conn, addr
	return u, nil
}

func (c *dhcpClient) closeUnicast() {
	if c.uni != nil {
		c.uni.Close()
		c.uni, c.uniConn, c.uniAddr = nil, nil, netip.Addr{}
	}
}

func (c *dhcpClient) closeSockets() {
	c.stopExchange()
	c.closeUnicast()
	if c.raw != nil {
		c.raw.Close()
		c.raw = nil
	}
}

// apply puts a lease in force: the address is replaced in place (a
// renewal only moves its lifetime; nothing is removed), the default route
// added when missing. A changed address or router replaces the old one after
// the new one is in.
func (c *dhcpClient) apply(l, prev *dhcpLease) error {
	now := c.opts.Clock.Now()
	valid := l.remaining(now)
	if !l.Infinite && valid <= 0 {
		return nil
	}
	if err := c.k.addrReplace(c.link, l.Address, valid); err != nil {
		return err
	}
	if l.Router.IsValid() {
		// Every time: a link that went administratively down lost it.
		if _, err := c.k.routeAdd(c.link, l.Router, c.metric, protoDHCP); err != nil {
			return err
		}
	}
	if prev != nil && prev.Router.IsValid() && prev.Router != l.Router {
		if err := c.k.routeDel(c.link, prev.Router, c.metric, protoDHCP); err != nil {
			return err
		}
	}
	if prev != nil && prev.Address != l.Address {
		if err := c.k.addrDel(c.link, prev.Address); err != nil {
			return err
		}
	}
	switch {
	case prev == nil || prev.Address != l.Address:
		c.events = append(c.events, [2]string{"dhcp", fmt.Sprintf("%s: bound %v from %v, lease %s", c.ifname, l.Address, l.Server, leaseLen(l))})
	default:
		c.log.Debug("lease extended", "address", l.Address.String(), "expiry", l.Expiry, "renewals", l.Renewals)
	}
	return nil
}

func leaseLen(l *dhcpLease) string {
	if l.Infinite {
		return "infinite"
	}
	return l.Expiry.Sub(l.Obtained).Round(time.Second).String()
}

// remove takes the lease's address and its route away.
func (c *dhcpClient) remove(l *dhcpLease) error {
	var errs []error
	if l.Router.IsValid() {
		if err := c.k.routeDel(c.link, l.Router, c.metric, protoDHCP); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.k.addrDel(c.link, l.Address); err != nil {
		errs = append(errs, err)
	}
	c.closeUnicast()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}
