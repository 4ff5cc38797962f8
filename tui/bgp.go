package tui

import (
	"fmt"
	"strings"
)

// maxBGPLines is how many lines the dashboard gives the BGP sessions and
// VIPs; past it, one line says how many more (halbctl status has all).
const maxBGPLines = 5

// bgpLines are the dashboard's BGP block, nothing without bgp: one line
// per session ("bgp 10.0.0.254 AS65000 established 1h2m  pfx in 0 out 1")
// and one per VIP, announced, GSHUT (announced with GRACEFUL_SHUTDOWN:
// maintenance drains it) or withdrawn, with why.
func bgpLines(c *Context, w int) []string {
	b := c.BGP
	if b == nil {
		return nil
	}
	t := c.Theme
	now := c.Opts.Now()
	var lines []string
	for _, s := range b.Sessions {
		state := t.Bad.Render(strings.ToUpper(s.State))
		if s.State == "established" {
			state = t.Good.Render("established") + " " + shortDur(now.Sub(s.Since))
		}
		l := fmt.Sprintf("bgp %s AS%d %s  pfx in %d out %d", s.Address, s.ASN, state, s.Received, s.Sent)
		if s.BFD != "" {
			l += "  bfd " + s.BFD
		}
		if s.State != "established" && s.DownReason != "" {
			l += fmt.Sprintf("  down %s ago: %s", shortDur(now.Sub(s.LastDown)), s.DownReason)
		}
		lines = append(lines, l)
	}
	if len(b.Sessions) == 0 {
		lines = append(lines, t.Dim.Render(fmt.Sprintf("bgp AS%d: no neighbor", b.ASN)))
	}
	for _, v := range b.VIPs {
		var state string
		switch v.State {
		case "announced":
			state = t.Good.Render("announced")
			if v.Prepend > 0 {
				state += fmt.Sprintf(" prepend %d", v.Prepend)
			}
		case "graceful_shutdown":
			state = t.Warn.Render("GSHUT")
		case "handoff":
			state = t.Warn.Render("handing off")
		default:
			state = t.Warn.Render("withdrawn")
		}
		lines = append(lines, fmt.Sprintf("bgp VIP %s %s (%s)", v.VIP, state, v.Reason))
	}
	if len(lines) > maxBGPLines {
		more := len(lines) - maxBGPLines + 1
		lines = append(lines[:maxBGPLines-1], t.Dim.Render(fmt.Sprintf("bgp: %d more sessions and VIPs (halbctl status)", more)))
	}
	for i, l := range lines {
		lines[i] = truncate(l, w)
	}
	return lines
}

// bgpAlarms: each session not established (with why it last went down)
// and the speaker's error.
func bgpAlarms(c *Context) []string {
	b := c.BGP
	if b == nil {
		return nil
	}
	var out []string
	if b.Error != "" {
		out = append(out, b.Error)
	}
	for _, s := range b.Sessions {
		if s.State == "established" {
			continue
		}
		a := fmt.Sprintf("bgp session %s not established (%s", s.Address, s.State)
		if s.DownReason != "" {
			a += "; last down: " + s.DownReason
		}
		out = append(out, a+")")
	}
	return out
}
