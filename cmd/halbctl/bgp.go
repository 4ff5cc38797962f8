package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"halb/appliance/api"
)

// printBGP writes the BGP speaker, each session and each VIP with why it
// is or is not announced; nothing when bgp is off.
func printBGP(w io.Writer, raw json.RawMessage, now time.Time) {
	var b api.BGPStatus
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &b) != nil {
		return
	}
	line := fmt.Sprintf("AS %d, router id %s", b.ASN, orNone(b.RouterID))
	if b.Maintenance {
		line += ", MAINTENANCE (VIPs drain, then are withdrawn)"
	}
	fmt.Fprintf(w, "bgp\t%d session(s)\t%s\n", len(b.Sessions), line)
	if b.Error != "" {
		fmt.Fprintf(w, "\tERROR\t%s\n", b.Error)
	}
	for _, s := range b.Sessions {
		state := strings.ToUpper(s.State)
		if s.State == "established" {
			state = "established " + now.Sub(s.Since).Truncate(time.Second).String()
		}
		down := ""
		if s.BFD != "" {
			down = ", bfd " + s.BFD
		}
		if s.DownReason != "" {
			down += fmt.Sprintf(", last down %s ago: %s", now.Sub(s.LastDown).Truncate(time.Second), s.DownReason)
		}
		fmt.Fprintf(w, "  neighbor %s\tAS %d\t%s, %d prefix(es) received, %d sent%s\n", s.Address, s.ASN, state, s.Received, s.Sent, down)
	}
	for _, v := range b.VIPs {
		state := "NOT ANNOUNCED"
		if v.Announced {
			state = "announced"
			if v.Prepend > 0 {
				state += fmt.Sprintf(" (prepend %d)", v.Prepend)
			}
			if len(v.Communities) > 0 {
				state += " (communities " + strings.Join(v.Communities, " ") + ")"
			}
		}
		fmt.Fprintf(w, "  vip %s\t%s\t%s\n", v.VIP, state, v.Reason)
	}
}
