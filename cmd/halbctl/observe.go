package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"halb/appliance/daemon"
)

// observe runs `halbctl observe hash`: a bcrypt hash of a password read
// twice (no echo on a terminal), for observe.users[].password_hash. It
// needs no daemon.
func (c *cli) observe(ctx context.Context, args []string) error {
	if len(args) != 1 || args[0] != "hash" {
		return usageError("observe takes hash")
	}
	pw, err := c.readPassword(ctx, "Password: ")
	if err != nil {
		return err
	}
	again, err := c.readPassword(ctx, "Password again: ")
	if err != nil {
		return err
	}
	if pw != again {
		return errors.New("the two passwords differ")
	}
	if pw == "" {
		return errors.New("the password is empty")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.out, string(h))
	return nil
}

// printObserve writes the metrics listener and the log targets.
func printObserve(w io.Writer, raw json.RawMessage) {
	var o daemon.ObserveStatus
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &o) != nil {
		return
	}
	l := o.Listener
	switch {
	case l.Listen == "":
		fmt.Fprintf(w, "observe\toff\t(observe.listen)\n")
	case l.Listening == "":
		fmt.Fprintf(w, "observe\t%s\tNOT LISTENING: %s\n", l.Listen, l.Error)
	default:
		refused := ""
		for _, r := range slices.Sorted(maps.Keys(l.Refused)) {
			refused += fmt.Sprintf(", %d refused (%s)", l.Refused[r], r)
		}
		fmt.Fprintf(w, "observe\t%s\t/metrics /stats: %d requests served%s\n", l.Listening, l.Served, refused)
		if l.Error != "" {
			fmt.Fprintf(w, "\t\tlast change not taken: %s\n", l.Error)
		}
	}
	for _, t := range o.Logs {
		state := fmt.Sprintf("%d lines, %d dropped", t.Written, t.Dropped)
		if t.Failing {
			state += ", FAILING: " + t.LastError
		}
		fmt.Fprintf(w, "log %s\t%s (%s)\t%s\n", t.Name, t.Where, strings.Join(t.Streams, ", "), state)
	}
}
