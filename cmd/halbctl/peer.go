package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"halb/appliance/api"
)

// pair runs `halbctl pair show|join|cancel`.
func (c *cli) pair(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError("pair needs show, join or cancel")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "show":
		if len(rest) > 0 {
			return usageError("pair show takes no arguments")
		}
		p, err := c.client.StartPairing(ctx)
		if err != nil {
			return err
		}
		printPairing(c.out, p, time.Now())
		return nil
	case "cancel":
		if len(rest) > 0 {
			return usageError("pair cancel takes no arguments")
		}
		if err := c.client.CancelPairing(ctx); err != nil {
			return err
		}
		fmt.Fprintln(c.out, "pairing code cancelled")
		return nil
	case "join":
		fs := flag.NewFlagSet("pair join", flag.ContinueOnError)
		fs.SetOutput(c.errOut)
		port := fs.Int("port", 0, "the other node's peer port (default 7900)")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if fs.NArg() < 2 {
			return usageError("pair join needs ADDRESS and CODE")
		}
		// A code typed with a space ("K7QM4 XRT9C") arrives as two words.
		res, err := c.client.JoinPeer(ctx, fs.Arg(0), *port, strings.Join(fs.Args()[1:], ""))
		if err != nil {
			return err
		}
		fmt.Fprintln(c.out, res.Message)
		fmt.Fprintf(c.out, "peer %s, fingerprint %s\nconfig version %s, history version %d\n", res.Peer, res.Fingerprint, res.ConfigVersion, res.Version)
		return nil
	}
	return usageError(fmt.Sprintf("unknown pair command %q", args[0]))
}

func printPairing(w io.Writer, p api.PairingCode, now time.Time) {
	fmt.Fprintf(w, "pairing code  %s\n", p.Code)
	fmt.Fprintf(w, "valid until   %s (%s), %d tries\n", p.Expires.Local().Format(time.TimeOnly), p.Expires.Sub(now).Round(time.Second), p.TriesLeft)
	fmt.Fprintf(w, "this node     %s port %d\n", orNone(strings.Join(p.Addresses, " ")), p.Port)
	fmt.Fprintf(w, "fingerprint   %s\n", p.Fingerprint)
	fmt.Fprintf(w, "on the other node: halbctl pair join %s %s\n", firstOr(p.Addresses, "ADDRESS"), p.Code)
}

func firstOr(l []string, def string) string {
	if len(l) == 0 {
		return def
	}
	return l[0]
}

// printPeer writes the peer link: this node's version, each peer's
// reachability, version, skew, roles and the fate of the last change sent.
func printPeer(w io.Writer, raw json.RawMessage, now time.Time) {
	var p api.PeerStatus
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &p) != nil {
		fmt.Fprintf(w, "peer\t-\tnot running\n")
		return
	}
	line := "config " + orNone(p.ConfigVersion)
	if p.Origin != "" {
		line += ", last changed on " + p.Origin
	}
	if p.Listen != "" {
		line += ", listening on " + p.Listen
	}
	state := "single node"
	if len(p.Peers) > 0 {
		state = fmt.Sprintf("%d peer(s)", len(p.Peers))
	}
	fmt.Fprintf(w, "peer\t%s\t%s\n", state, line)
	if p.Pairing != nil {
		fmt.Fprintf(w, "\tPAIRING\tcode active until %s, %d tries left (halbctl pair show)\n", p.Pairing.Expires.Local().Format(time.TimeOnly), p.Pairing.TriesLeft)
	}
	for _, ps := range p.Peers {
		var parts []string
		switch {
		case !ps.Paired:
			parts = append(parts, "NOT PAIRED")
		case ps.Reachable:
			parts = append(parts, "reachable")
		default:
			parts = append(parts, "UNREACHABLE: "+orNone(ps.Error))
		}
		if !ps.LastSeen.IsZero() {
			parts = append(parts, "seen "+now.Sub(ps.LastSeen).Truncate(100*time.Millisecond).String()+" ago")
		}
		if ps.ConfigVersion != "" {
			v := "config " + ps.ConfigVersion
			if ps.InSync {
				v += " (in sync)"
			} else {
				v += " (DIFFERS)"
			}
			parts = append(parts, v)
		}
		if ps.Reachable || ps.ClockSkew != 0 {
			skew := "clock " + signed(ps.ClockSkew)
			if ps.SkewAlarm {
				skew = "CLOCK " + signed(ps.ClockSkew) + " (beyond time.max_offset)"
			}
			parts = append(parts, skew)
		}
		fmt.Fprintf(w, "\t%s\t%s\n", ps.Name, strings.Join(parts, ", "))
		fp := ps.Fingerprint
		if fp == "" {
			fp = "no certificate pinned"
		}
		fmt.Fprintf(w, "\t\t%s port %d, %s\n", ps.Address, ps.Port, fp)
		if len(ps.Roles) > 0 {
			var roles []string
			for _, k := range slices.Sorted(maps.Keys(ps.Roles)) {
				roles = append(roles, k+" "+ps.Roles[k])
			}
			fmt.Fprintf(w, "\t\tvrrp: %s\n", strings.Join(roles, ", "))
		}
		if s := ps.Sync; s != nil {
			switch s.State {
			case "applied":
				fmt.Fprintf(w, "\t\tlast change %s applied on %s at %s\n", s.Version, ps.Name, s.At.Local().Format(time.TimeOnly))
			case "rejected":
				fmt.Fprintf(w, "\t\tlast change %s REJECTED by %s: %s\n", s.Version, ps.Name, s.Error)
			default:
				fmt.Fprintf(w, "\t\tlast change %s %s%s\n", s.Version, s.State, orEmpty(": ", s.Error))
			}
		}
		if len(ps.SplitBrain) > 0 {
			fmt.Fprintf(w, "\t\tSPLIT BRAIN: both MASTER of %s\n", strings.Join(ps.SplitBrain, ", "))
		}
	}
	if c := p.Conflict; c != nil {
		fmt.Fprintf(w, "\tCONFLICT\t%s (halbctl peer resolve mine|theirs)\n", c.Message)
	}
	for _, a := range p.Alarms {
		fmt.Fprintf(w, "\tALARM\t%s\n", a)
	}
}

func orEmpty(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// parseFlags parses a command's flags: -h is flag.ErrHelp (run prints the
// usage), anything else wrong a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.Usage = func() {}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return err
	} else if err != nil {
		return usageError(err.Error())
	}
	return nil
}
