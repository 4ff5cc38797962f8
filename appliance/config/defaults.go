package config

import (
	"fmt"
	"time"
)

// applyDefaults fills fields whose key is absent from the file. A key that is
// present keeps its value, even zero, so that validation can reject an
// explicit "interval: 0s" instead of silently replacing it.
func applyDefaults(c *Config, present func(path string) bool) {
	setDur := func(d *Duration, path string, def time.Duration) {
		if !present(path) {
			*d = Duration(def)
		}
	}
	setInt := func(v *int, path string, def int) {
		if !present(path) {
			*v = def
		}
	}
	setStr := func(v *string, path string, def string) {
		if !present(path) {
			*v = def
		}
	}

	setInt(&c.Node.PeerPort, "node.peer_port", DefaultPeerPort)
	for i := range c.Peers {
		setInt(&c.Peers[i].Port, fmt.Sprintf("peers[%d].port", i), DefaultPeerPort)
	}
	setDur(&c.Time.MaxOffset, "time.max_offset", DefaultMaxOffset)
	for i := range c.Observe.Logs {
		l := &c.Observe.Logs[i]
		p := fmt.Sprintf("observe.logs[%d]", i)
		setStr(&l.Name, p+".name", fmt.Sprintf("log%d", i))
		if !present(p + ".streams") {
			l.Streams = []string{"access"}
		}
		if l.To == "file" {
			if !present(p + ".max_size") {
				l.MaxSize = DefaultLogMaxSize
			}
			setPtr(&l.Keep, present(p+".keep"), DefaultLogKeep)
		}
		if l.To == "syslog" {
			setStr(&l.Transport, p+".transport", DefaultLogTransport)
			setStr(&l.Facility, p+".facility", DefaultLogFacility)
		}
		if l.To == "syslog" || l.To == "journald" {
			setStr(&l.Tag, p+".tag", DefaultLogTag)
		}
		setInt(&l.Queue, p+".queue", DefaultLogQueue)
	}
	for i := range c.Backends {
		if t := c.Backends[i].TLS; t != nil {
			setStr(&t.Verify, fmt.Sprintf("backends[%d].tls.verify", i), "full")
		}
	}
	for i := range c.Services {
		t := c.Services[i].TLS
		if t == nil {
			continue
		}
		p := fmt.Sprintf("services[%d].tls", i)
		setStr(&t.Policy, p+".policy", "intermediate")
		if t.Policy == "modern" {
			setStr(&t.MinVersion, p+".min_version", "1.3")
		} else {
			setStr(&t.MinVersion, p+".min_version", "1.2")
		}
		if t.ClientAuth != nil {
			setStr(&t.ClientAuth.Verify, p+".client_auth.verify", "required")
		}
		if t.Default == "" && !present(p+".default") && len(t.Certificates) > 0 {
			t.Default = t.Certificates[0].Name
		}
	}
	setDur(&c.Time.StepThreshold, "time.step_threshold", DefaultStepThreshold)
	setDur(&c.Time.MinPoll, "time.min_poll", DefaultMinPoll)
	setDur(&c.Time.MaxPoll, "time.max_poll", DefaultMaxPoll)
	for i := range c.VRRP {
		v := &c.VRRP[i]
		p := fmt.Sprintf("vrrp[%d]", i)
		setInt(&v.Version, p+".version", DefaultVRRPVersion)
		if v.AddressOwner {
			setInt(&v.Priority, p+".priority", 255)
		} else {
			setInt(&v.Priority, p+".priority", DefaultPriority)
		}
		if v.Version == 2 {
			setDur(&v.AdvertInterval, p+".advert_interval", DefaultAdvertIntervalV2)
		} else {
			setDur(&v.AdvertInterval, p+".advert_interval", DefaultAdvertInterval)
		}
		if v.Preempt == nil {
			on := true
			v.Preempt = &on
		}
		setPtr(&v.GARP.Repeat, present(p+".garp.repeat"), DefaultGARPRepeat)
		setDur(&v.GARP.Interval, p+".garp.interval", DefaultGARPInterval)
		for j := range v.Track.Scripts {
			s := &v.Track.Scripts[j]
			sp := fmt.Sprintf("%s.track.scripts[%d]", p, j)
			setDur(&s.Interval, sp+".interval", DefaultScriptInterval)
			setDur(&s.Timeout, sp+".timeout", s.Interval.D())
			setInt(&s.Rise, sp+".rise", DefaultScriptRise)
			setInt(&s.Fall, sp+".fall", DefaultScriptFall)
			if s.Weight == nil {
				w := v.Track.Weight
				s.Weight = &w
			}
		}
	}
	for i := range c.Services {
		s := &c.Services[i]
		p := fmt.Sprintf("services[%d]", i)
		setStr(&s.Mode, p+".mode", DefaultMode)
		t := &s.Timeouts
		setDur(&t.Connect, p+".timeouts.connect", DefaultConnectTimeout)
		setDur(&t.Client, p+".timeouts.client", DefaultClientTimeout)
		setDur(&t.Server, p+".timeouts.server", DefaultServerTimeout)
		setDur(&t.HTTPRequest, p+".timeouts.http_request", DefaultHTTPRequest)
		setDur(&t.HTTPKeepAlive, p+".timeouts.http_keep_alive", DefaultHTTPKeepAlive)
		setDur(&t.Queue, p+".timeouts.queue", DefaultQueueTimeout)
		setDur(&t.Tunnel, p+".timeouts.tunnel", DefaultTunnelTimeout)
		l := &s.Limits
		setInt(&l.MaxRequestLine, p+".limits.max_request_line", DefaultMaxRequestLine)
		setInt(&l.MaxHeaderBytes, p+".limits.max_header_bytes", DefaultMaxHeaderBytes)
		setInt(&l.MaxHeaders, p+".limits.max_headers", DefaultMaxHeaders)
		setInt(&s.MinHealthy, p+".min_healthy", 1)
		for j := range s.Routes {
			setStr(&s.Routes[j].PathPrefix, fmt.Sprintf("%s.routes[%d].path_prefix", p, j), DefaultPathPrefix)
		}
	}
	if c.BGP.Enabled() {
		setDur(&c.BGP.DrainTime, "bgp.drain_time", DefaultBGPDrainTime)
	}
	for i := range c.BGP.Neighbors {
		n := &c.BGP.Neighbors[i]
		p := fmt.Sprintf("bgp.neighbors[%d]", i)
		setPtr(&n.HoldTime, present(p+".hold_time"), Duration(DefaultBGPHoldTime))
		setDur(&n.Keepalive, p+".keepalive", (n.Hold() / 3).Truncate(time.Second))
		setInt(&n.Multihop, p+".multihop", DefaultBGPMultihop)
		if n.BFD {
			setDur(&n.BFDInterval, p+".bfd_interval", DefaultBFDInterval)
			setInt(&n.BFDMultiplier, p+".bfd_multiplier", DefaultBFDMultiplier)
		}
	}
	for i := range c.BGP.Announce {
		a := &c.BGP.Announce[i]
		p := fmt.Sprintf("bgp.announce[%d]", i)
		setStr(&a.Mode, p+".mode", DefaultBGPMode)
		setStr(&a.When, p+".when", DefaultBGPWhen)
		setInt(&a.StandbyPrepend, p+".standby_prepend", DefaultBGPPrepend)
	}
	for i := range c.Backends {
		b := &c.Backends[i]
		p := fmt.Sprintf("backends[%d]", i)
		setStr(&b.Balance, p+".balance", DefaultBalance)
		if b.Sticky.Source {
			setDur(&b.Sticky.Expire, p+".sticky.expire", DefaultStickyExpire)
		}
		h := &b.Health
		setStr(&h.Check, p+".health.check", DefaultCheck)
		if h.Check == "http" || h.Check == "https" {
			setStr(&h.Path, p+".health.path", DefaultCheckPath)
			if !present(p + ".health.expect_status") {
				h.ExpectStatus = StatusCodes{{DefaultExpectStatus, DefaultExpectStatus}}
			}
		}
		setDur(&h.Interval, p+".health.interval", DefaultCheckInterval)
		setDur(&h.Timeout, p+".health.timeout", DefaultCheckTimeout)
		setInt(&h.Rise, p+".health.rise", DefaultRise)
		setInt(&h.Fall, p+".health.fall", DefaultFall)
		setStr(&h.Initial, p+".health.initial", "up")
		setStr(&h.Observe, p+".health.observe", "layer4")
		for j := range b.Servers {
			if b.Servers[j].Weight == nil {
				w := 1
				b.Servers[j].Weight = &w
			}
		}
	}
}

// setPtr gives a value whose zero differs from its default (the pointer
// says whether a config sets it: GARP.Repeat, LogTarget.Keep,
// BGPNeighbor.HoldTime) its default when its key is absent or empty.
func setPtr[T any](v **T, present bool, def T) {
	if !present || *v == nil {
		*v = &def
	}
}
