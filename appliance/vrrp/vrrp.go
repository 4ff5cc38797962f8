// Package vrrp is halb's keepalived half: RFC 5798 VRRPv3 (and RFC 3768
// VRRPv2 for interoperability) floating addresses. Each configured instance
// is a pure state machine (fsm.go, tested transition by transition without
// sleeping) driven by a loop that owns a raw IP protocol 112 socket on the
// instance's interface and the timers; VIPs, gratuitous ARP and unsolicited
// neighbor advertisements go through one door to the kernel (Netif).
package vrrp

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"halb/appliance/config"
)

// Component runs every VRRP instance of the config.
type Component struct {
	log     *slog.Logger
	netif   Netif
	publish func(typ, msg string, data any)

	mu        sync.Mutex
	want      []config.VRRPInstance
	changed   chan struct{}
	running   map[string]*running
	instances []*instance // for status, in config order
}

type running struct {
	in     *instance
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns the VRRP component. publish receives state changes for the
// event stream; netif is the kernel door (NewNetlinkNetif in the daemon).
func New(netif Netif, log *slog.Logger, publish func(typ, msg string, data any)) *Component {
	if publish == nil {
		publish = func(string, string, any) {}
	}
	return &Component{log: log, netif: netif, publish: publish, changed: make(chan struct{}, 1), running: map[string]*running{}}
}

// Name is the component's key in status.
func (c *Component) Name() string { return "vrrp" }

// Apply hands the component a new config: instances that are new start,
// removed ones step down (priority-0 advert, VIPs removed), changed ones
// restart, unchanged ones keep running untouched.
func (c *Component) Apply(cfg *config.Config) error {
	c.mu.Lock()
	c.want = cfg.VRRP
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
	return nil
}

// Run works until ctx ends, then steps every instance down and returns.
func (c *Component) Run(ctx context.Context) error {
	defer c.netif.Close()
	defer c.stopAll()
	c.reconcile(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.changed:
			c.reconcile(ctx)
		}
	}
}

func (c *Component) reconcile(ctx context.Context) {
	c.mu.Lock()
	want := c.want
	c.mu.Unlock()
	keep := map[string]bool{}
	var order []*instance
	for _, ic := range want {
		keep[ic.Name] = true
		if r, ok := c.running[ic.Name]; ok {
			if reflect.DeepEqual(r.in.cfg, ic) {
				order = append(order, r.in)
				continue
			}
			c.stop(ic.Name)
		}
		in, err := newInstance(ic, c.netif, c.log, c.publish)
		if err != nil {
			c.log.Error("vrrp instance not started", "err", err)
			continue
		}
		ictx, cancel := context.WithCancel(ctx)
		r := &running{in: in, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(r.done)
			in.run(ictx)
		}()
		c.running[ic.Name] = r
		order = append(order, in)
	}
	for name := range c.running {
		if !keep[name] {
			c.stop(name)
		}
	}
	c.mu.Lock()
	c.instances = order
	c.mu.Unlock()
}

func (c *Component) stop(name string) {
	r := c.running[name]
	r.cancel()
	<-r.done
	delete(c.running, name)
}

func (c *Component) stopAll() {
	for name := range c.running {
		c.stop(name)
	}
}

// Status lists every instance in config order.
func (c *Component) Status() any {
	c.mu.Lock()
	ins := append([]*instance(nil), c.instances...)
	c.mu.Unlock()
	out := make([]InstanceStatus, 0, len(ins))
	for _, in := range ins {
		out = append(out, in.snapshot())
	}
	return out
}

// ErrNoInstance is returned by Handover for an unknown instance name.
var ErrNoInstance = errors.New("no such VRRP instance")

// Handover makes the named instances (all when none are named) give up
// MASTER now: a priority-0 advert, then BACKUP until the peer took over.
func (c *Component) Handover(names ...string) error {
	c.mu.Lock()
	ins := append([]*instance(nil), c.instances...)
	c.mu.Unlock()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	found := 0
	for _, in := range ins {
		if len(names) > 0 && !want[in.cfg.Name] {
			continue
		}
		found++
		// Wait for the peer for a few Master_Down_Intervals at most.
		wait := 3 * (4 * in.cfg.AdvertInterval.D())
		in.cmds <- func(m *machine, now time.Time) Actions { return m.Handover(now, wait) }
	}
	if found < len(want) {
		return ErrNoInstance
	}
	return nil
}
