package timesync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/beevik/ntp"
)

// Sample is one NTP exchange with one server, as the selection uses it.
type Sample struct {
	// Address is where the query went (the name resolved, with port).
	Address string
	// Offset is the server's clock minus ours; Delay the round trip.
	Offset time.Duration
	Delay  time.Duration
	// Stratum is 1..15 in a usable sample.
	Stratum int
	// RootDelay and RootDispersion are the server's own distance to its
	// reference, as it reports them.
	RootDelay      time.Duration
	RootDispersion time.Duration
	// Leap is the leap indicator (3: the server is not synchronised).
	Leap int
}

// maxStratum is the highest usable stratum (16 means unsynchronised).
const maxStratum = 15

// maxDistance is the root distance above which a sample is not used
// (RFC 5905's MAXDIST is 1.5 s; 16 s is MAXDISP, the limit beevik checks).
const maxDistance = 16 * time.Second

// Validate says why a sample cannot be used for time: a kiss-o'-death or
// unsynchronised server, or figures no honest exchange produces.
func (s Sample) Validate() error {
	switch {
	case s.Stratum < 1 || s.Stratum > maxStratum:
		return fmt.Errorf("stratum %d is not 1..%d", s.Stratum, maxStratum)
	case s.Leap == int(ntp.LeapNotInSync):
		return errors.New("the server is not synchronised (leap indicator 3)")
	case s.Leap < 0 || s.Leap > 3:
		return fmt.Errorf("leap indicator %d is not 0..3", s.Leap)
	case s.Delay < 0:
		return fmt.Errorf("round trip %v is negative", s.Delay)
	case s.RootDelay < 0 || s.RootDispersion < 0:
		return fmt.Errorf("root delay %v or dispersion %v is negative", s.RootDelay, s.RootDispersion)
	case s.RootDelay/2+s.RootDispersion > maxDistance:
		return fmt.Errorf("root distance %v is beyond %v", s.RootDelay/2+s.RootDispersion, maxDistance)
	}
	return nil
}

// dialFunc opens the UDP socket a query uses.
type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// queryTimeout bounds one exchange when the context has no sooner deadline.
const queryTimeout = 5 * time.Second

// defaultQuery is the NTPv4 exchange through beevik/ntp.
var defaultQuery = queryVia((&net.Dialer{}).DialContext)

// queryVia returns a Query that dials with dial (tests dial inside a
// network namespace) and exchanges and checks one packet with beevik/ntp:
// its Validate rejects kiss-o'-death (stratum 0), stratum 16, LI=3, stale
// reference times and root distances beyond 16 s; Sample.Validate checks
// the figures again.
func queryVia(dial dialFunc) func(ctx context.Context, server string) (Sample, error) {
	return func(ctx context.Context, server string) (s Sample, err error) {
		// beevik/ntp v1.6.0 panics on an answer whose poll or precision
		// byte is -128 (a negative shift in toInterval): a bad packet
		// from the network is an invalid answer, not a crash.
		defer func() {
			if p := recover(); p != nil {
				s, err = Sample{Address: s.Address}, fmt.Errorf("ntp server %s: invalid answer: %v", server, p)
			}
		}()
		timeout := queryTimeout
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
		if timeout <= 0 {
			return Sample{}, fmt.Errorf("ntp server %s: %w", server, context.DeadlineExceeded)
		}
		var addr string
		stop := func() bool { return false }
		defer func() { stop(); s.Address = addr }()
		opts := ntp.QueryOptions{
			Timeout: timeout,
			Dialer: func(_, remote string) (net.Conn, error) {
				c, err := dial(ctx, "udp", remote)
				if err != nil {
					return nil, err
				}
				addr = c.RemoteAddr().String()
				// A cancelled round does not wait out the timeout. The
				// conn goes back unwrapped: beevik reads kernel receive
				// timestamps only from a *net.UDPConn.
				stop = context.AfterFunc(ctx, func() { c.Close() })
				return c, nil
			},
		}
		r, err := ntp.QueryWithOptions(server, opts)
		if err != nil {
			return Sample{}, fmt.Errorf("ntp server %s: %w", server, err)
		}
		s = Sample{
			Offset:         r.ClockOffset,
			Delay:          r.RTT,
			Stratum:        int(r.Stratum),
			RootDelay:      r.RootDelay,
			RootDispersion: r.RootDispersion,
			Leap:           int(r.Leap),
		}
		if err := r.Validate(); err != nil {
			if r.IsKissOfDeath() {
				err = fmt.Errorf("%w (kiss code %q)", err, r.KissCode)
			}
			return Sample{}, fmt.Errorf("ntp server %s: %w", server, err)
		}
		if err := s.Validate(); err != nil {
			return Sample{}, fmt.Errorf("ntp server %s: %w", server, err)
		}
		return s, nil
	}
}
