package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"halb/appliance/config"
)

// BindError is a listen address of a service that could not be bound (the
// port is another program's, the address is not allowed, ...).
type BindError struct {
	Service string // the service's name
	Addr    string // the listen address, as configured
	Err     error  // the bind error, e.g. "bind: address already in use"
}

func (e *BindError) Error() string {
	return fmt.Sprintf("service %q cannot listen on %s: %v", e.Service, e.Addr, e.Err)
}

func (e *BindError) Unwrap() error { return e.Err }

// listenerPool holds the proxy's listening sockets by address, so that a
// reload binds what it adds before it releases anything, and hands an
// address the running config already holds to its new owner (the same
// service with a new state, or another service) without closing it, as
// caddy's listener pool does: an address kept or moved never stops
// accepting, and a config with an address that cannot be bound changes
// nothing. The component's reloadMu guards it.
type listenerPool struct {
	byKey map[string]*poolListener
	// pending holds the addresses of a prepared config not applied yet;
	// they are kept open beside those of the latest applied config.
	pending map[string]bool
	closed  bool           // the component stopped: nothing binds any more
	wg      sync.WaitGroup // the accept loops
}

// poolListener is one listening socket and the service its connections go to.
type poolListener struct {
	ln    net.Listener
	owner atomic.Pointer[service] // nil until a config using it is applied
	// serving: its accept loop runs (started with its first owner; until
	// then connections wait in the kernel's backlog).
	serving bool
}

func newListenerPool() *listenerPool {
	return &listenerPool{byKey: map[string]*poolListener{}}
}

// listenKey is the pool's key of a listen address: ":80" and "[::]:80" are
// the same socket.
func listenKey(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.String()
	}
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		return "[::]:" + port
	}
	return addr
}

// keys returns the pool keys of every listen address of cfg.
func keys(cfg *config.Config) map[string]bool {
	out := map[string]bool{}
	if cfg == nil {
		return out
	}
	for _, s := range cfg.Services {
		for _, a := range s.Listen {
			out[listenKey(a)] = true
		}
	}
	return out
}

// bind opens every listen address of cfg the pool does not hold yet. If one
// cannot be bound it closes what it opened and returns one *BindError per
// address that failed (errors.Join), leaving the pool as it was.
func (p *listenerPool) bind(cfg *config.Config) error {
	if p.closed {
		return errors.New("the proxy is stopped")
	}
	opened := map[string]*poolListener{}
	var errs []error
	for _, s := range cfg.Services {
		for _, a := range s.Listen {
			k := listenKey(a)
			if p.byKey[k] != nil || opened[k] != nil {
				continue
			}
			ln, err := listenFreebind(a)
			if err != nil {
				errs = append(errs, &BindError{Service: s.Name, Addr: a, Err: syscallError(err)})
				continue
			}
			opened[k] = &poolListener{ln: ln}
		}
	}
	if len(errs) > 0 {
		for _, pl := range opened {
			pl.ln.Close()
		}
		return errors.Join(errs...)
	}
	for k, pl := range opened {
		p.byKey[k] = pl
	}
	return nil
}

// syscallError strips net.OpError's "listen tcp ADDR: " from a listen error,
// which BindError says itself.
func syscallError(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se
	}
	return err
}

// take hands the listeners of addrs to s, binding any the pool lacks (none,
// when the config was bound by Prepare or Apply), and returns the addresses
// s listens on.
func (p *listenerPool) take(s *service, addrs []string) ([]string, error) {
	var listening []string
	var errs []error
	for _, a := range addrs {
		k := listenKey(a)
		pl := p.byKey[k]
		if pl == nil {
			ln, err := listenFreebind(a)
			if err != nil {
				errs = append(errs, &BindError{Service: s.name, Addr: a, Err: syscallError(err)})
				continue
			}
			pl = &poolListener{ln: ln}
			p.byKey[k] = pl
		}
		pl.owner.Store(s)
		if !pl.serving {
			pl.serving = true
			p.wg.Add(1)
			go p.serve(pl)
		}
		listening = append(listening, pl.ln.Addr().String())
	}
	return listening, errors.Join(errs...)
}

// sweep closes every listener whose address is not in keep.
func (p *listenerPool) sweep(keep map[string]bool) {
	for k, pl := range p.byKey {
		if !keep[k] {
			pl.ln.Close()
			delete(p.byKey, k)
		}
	}
}

// close closes every listener; bind refuses from now on. wait then waits
// for the accept loops.
func (p *listenerPool) close() {
	p.closed = true
	p.pending = nil
	p.sweep(nil)
}

// serve accepts on pl until it is closed and hands each connection to the
// service that owns pl at that moment.
func (p *listenerPool) serve(pl *poolListener) {
	defer p.wg.Done()
	for {
		c, err := pl.ln.Accept()
		s := pl.owner.Load()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			s.logLimited("accept", "accept failed", "service", s.name, "err", err)
			time.Sleep(10 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		s.stats.conns.Add(1)
		go s.handle(c.(*net.TCPConn))
	}
}
