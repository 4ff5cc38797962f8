// Command halbctl controls a running halbd through its control API.
//
//	halbctl [-socket PATH] status [-json]
//	halbctl config validate FILE...   (no daemon needed)
//	halbctl [-socket PATH] config show [VERSION]
//	halbctl [-socket PATH] config apply FILE
//	halbctl [-socket PATH] config history
//	halbctl [-socket PATH] config rollback VERSION
//	halbctl [-socket PATH] events
//	halbctl [-socket PATH] handover [INSTANCE...]
//	halbctl [-socket PATH] maintenance [on|off]
//	halbctl [-socket PATH] server [drain|ready BACKEND/SERVER]
//	halbctl [-socket PATH] logs [-n N]
//	halbctl [-socket PATH] system reboot|poweroff
//	halbctl [-socket PATH] system factory-reset NODE_NAME
//	halbctl [-socket PATH] cert add NAME --cert FILE --key FILE [--replace]
//	halbctl [-socket PATH] cert list
//	halbctl [-socket PATH] cert remove NAME
//	halbctl [-socket PATH] console
//	halbctl [-socket PATH] console password [--reset]
//	halbctl [-socket PATH] version
//
// Exit status: 0 success (and -h), 1 the operation failed (an invalid
// config, an unreachable daemon), 2 a usage error.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/appliance/health"
	"halb/appliance/netcfg"
	"halb/appliance/proxy"
	"halb/appliance/timesync"
	"halb/appliance/vrrp"
)

const usage = `usage: halbctl [-socket PATH] COMMAND

commands:
  status [-json]          show the daemon's state (-json: the raw status)
  config validate FILE... check config files, without a daemon
  config show [VERSION]   print the running config (or a version of the history)
  config apply [-confirm-within D] FILE
                          validate, save and apply FILE on the daemon; with
                          -confirm-within (e.g. 60s) it reverts unless confirmed
  config confirm          keep the change applied with -confirm-within
  config history          list the last 20 applied configs, newest first
  config rollback VERSION apply a version of the history again
  events                  follow the daemon's event stream
  handover [INSTANCE...]  give up VRRP MASTER now (all instances when none named)
  maintenance [on|off]    keep no VIPs on this node until off (kept across restarts)
  server [drain|ready BACKEND/SERVER]
                          drain a server (no new sessions; kept across reloads and
                          restarts) or make it ready; alone: list drained servers
  logs [-n N]             print the daemon's last N log records (default 100, at most 500)
  system reboot|poweroff  reboot or power off the machine (halbd -system-actions only)
  system factory-reset NODE_NAME
                          remove the config and all of halb's state, then reboot;
                          NODE_NAME confirms it ("" on an unconfigured node)
  pair show               make a pairing code (valid 10 minutes, 5 tries) and print it
                          with this node's addresses, port and fingerprint
  pair join [-port N] ADDRESS CODE
                          pair with the node at ADDRESS that shows CODE; this node
                          takes that node's services, backends and VIPs
  pair cancel             end the pairing code
  unpair NAME             forget the peer NAME (it is told, when reachable)
  peer resolve mine|theirs
                          settle the reported conflict: apply this node's losing
                          change again (mine) or keep the winner (theirs)
  cert add NAME --cert FILE --key FILE [--replace]
                          check a PEM chain (leaf first) and its key and store them
                          on the daemon as NAME for services[].tls; --replace
                          replaces the certificate stored as NAME
  cert list               list the stored certificates: subject, names, expiry, key
                          type, chain length and the services using each
  cert remove NAME        remove a stored certificate that no service uses
  console                 say whether a console admin password is set and required
  console password        set or change the console admin password (asks twice,
                          without echo; one per line when stdin is not a terminal)
  console password --reset
                          remove the console admin password
  observe hash            print a bcrypt hash of a password (asked twice) for
                          observe.users[].password_hash; needs no daemon
  import [--keepalived FILE] [--haproxy FILE] [--node-name NAME] [-o FILE]
         [--peer-keepalived FILE] [--peer-haproxy FILE] [--peer-node-name NAME]
         [--peer-o FILE] [--report FILE] [--allow-partial]
                          turn a node's (or a pair's) keepalived.conf and haproxy.cfg
                          into halb.yaml; prints a report of every directive with no
                          exact equivalent, and then writes nothing unless
                          --allow-partial; needs no daemon
  version                 print halbctl's version and the daemon's

options:
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type usageError string

func (e usageError) Error() string { return string(e) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("halbctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", api.DefaultSocket, "control API unix socket of halbd")
	printUsage := func(w io.Writer) {
		fmt.Fprint(w, usage)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	fs.Usage = func() {} // run prints it, on stdout when asked for
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return 0
	} else if err != nil {
		printUsage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{client: api.NewClient(*socket), socket: *socket, out: stdout, errOut: stderr}
	defer c.client.Close()

	err := c.dispatch(ctx, fs.Args())
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "halbctl: %v\n\n", err)
		printUsage(stderr)
		return 2
	case errors.Is(err, context.Canceled):
		return 0
	default:
		if es := config.AsErrors(err); es != nil {
			fmt.Fprintln(stderr, es.Error())
		} else {
			fmt.Fprintf(stderr, "halbctl: %v\n", err)
			if hint := dialHint(err, *socket); hint != "" {
				fmt.Fprintln(stderr, hint)
			}
		}
		return 1
	}
}

// dialHint says what to check when err is a failure to reach the daemon.
func dialHint(err error, socket string) string {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return ""
	}
	if errors.Is(err, os.ErrPermission) {
		return fmt.Sprintf("halbctl: no permission on %s: run as root or as a member of the socket's group", socket)
	}
	return fmt.Sprintf("halbctl: is halbd running? (socket %s; -socket PATH to use another)", socket)
}

type cli struct {
	client      *api.Client
	socket      string
	out, errOut io.Writer
	lines       *bufio.Reader // stdin, when it is not a terminal
}

// stdin is where halbctl reads passwords; tests replace it.
var stdin io.Reader = os.Stdin

func (c *cli) console(ctx context.Context, args []string) error {
	switch {
	case len(args) == 0:
		a, err := c.client.ConsoleAuth(ctx)
		if err != nil {
			return err
		}
		set := map[bool]string{true: "set", false: "not set"}[a.PasswordSet]
		req := "console actions that change state ask for it"
		if !a.Required {
			req = "not required (console.require_password: false)"
		} else if !a.PasswordSet {
			req = "required: the console asks for one to be set"
		}
		fmt.Fprintf(c.out, "console password %s; %s\n", set, req)
		return nil
	case len(args) == 2 && args[0] == "password" && (args[1] == "--reset" || args[1] == "-reset"):
		if err := c.client.ResetConsolePassword(ctx); err != nil {
			return err
		}
		fmt.Fprintln(c.out, "console password removed")
		return nil
	case len(args) == 1 && args[0] == "password":
		return c.setPassword(ctx)
	}
	return usageError("console takes nothing, password or password --reset")
}

func (c *cli) system(ctx context.Context, args []string) error {
	switch {
	case len(args) == 1 && args[0] == "reboot":
		if err := c.client.Reboot(ctx); err != nil {
			return err
		}
		fmt.Fprintln(c.out, "rebooting")
	case len(args) == 1 && args[0] == "poweroff":
		if err := c.client.Poweroff(ctx); err != nil {
			return err
		}
		fmt.Fprintln(c.out, "powering off")
	case len(args) == 2 && args[0] == "factory-reset":
		if err := c.client.FactoryReset(ctx, args[1]); err != nil {
			return err
		}
		fmt.Fprintln(c.out, "factory reset: config and state removed; rebooting")
	default:
		return usageError("system takes reboot, poweroff or factory-reset NODE_NAME")
	}
	return nil
}

// printLogs writes log records one a line: time, level, message, attributes.
func printLogs(w io.Writer, l []api.LogRecord) {
	for _, r := range l {
		line := fmt.Sprintf("%s %-5s %s", r.Time.Local().Format("2006-01-02 15:04:05.000"), r.Level, r.Message)
		if r.Attrs != "" {
			line += " " + r.Attrs
		}
		fmt.Fprintln(w, line)
	}
}

func (c *cli) setPassword(ctx context.Context) error {
	a, err := c.client.ConsoleAuth(ctx)
	if err != nil {
		return err
	}
	var old string
	if a.PasswordSet {
		if old, err = c.readPassword(ctx, "Current console password: "); err != nil {
			return err
		}
	}
	pw, err := c.readPassword(ctx, "New console password: ")
	if err != nil {
		return err
	}
	again, err := c.readPassword(ctx, "New console password again: ")
	if err != nil {
		return err
	}
	if pw != again {
		return errors.New("the two passwords differ; nothing changed")
	}
	if err := c.client.SetConsolePassword(ctx, pw, old); err != nil {
		return err
	}
	fmt.Fprintln(c.out, "console password set")
	return nil
}

// readPassword asks for a password: without echo on a terminal, else as a
// line of stdin.
func (c *cli) readPassword(ctx context.Context, prompt string) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return readTerminal(ctx, int(f.Fd()), c.errOut, prompt)
	}
	if c.lines == nil {
		c.lines = bufio.NewReader(stdin)
	}
	line, err := c.lines.ReadString('\n')
	if err != nil && (line == "" || err != io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// readTerminal reads a line from the terminal fd without echo; ctrl+c
// (which ends ctx) gives up and puts the terminal back.
func readTerminal(ctx context.Context, fd int, w io.Writer, prompt string) (string, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return "", err
	}
	fmt.Fprint(w, prompt)
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	// The goroutine ends with the read; on ctrl+c halbctl exits.
	go func() {
		b, err := term.ReadPassword(fd)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		fmt.Fprintln(w)
		return string(r.b), r.err
	case <-ctx.Done():
		term.Restore(fd, state)
		fmt.Fprintln(w)
		return "", ctx.Err()
	}
}

func (c *cli) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError("no command")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "status":
		fs := flag.NewFlagSet("status", flag.ContinueOnError)
		fs.SetOutput(c.errOut)
		asJSON := fs.Bool("json", false, "print the raw status JSON")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		return c.status(ctx, *asJSON)
	case "config":
		if len(rest) == 0 {
			return usageError("config needs validate, show, apply, confirm, history or rollback")
		}
		switch sub, files := rest[0], rest[1:]; sub {
		case "validate":
			if len(files) == 0 {
				return usageError("config validate needs at least one FILE")
			}
			return c.validate(files)
		case "show":
			var raw []byte
			var err error
			switch len(files) {
			case 0:
				raw, err = c.client.Config(ctx)
			case 1:
				v, verr := versionArg(files[0])
				if verr != nil {
					return verr
				}
				raw, err = c.client.HistoryConfig(ctx, v)
			default:
				return usageError("config show takes at most one VERSION")
			}
			if err != nil {
				return err
			}
			_, err = c.out.Write(raw)
			return err
		case "history":
			if len(files) != 0 {
				return usageError("config history takes no arguments")
			}
			l, err := c.client.History(ctx)
			if err != nil {
				return err
			}
			printHistory(c.out, l)
			return nil
		case "rollback":
			if len(files) != 1 {
				return usageError("config rollback needs one VERSION")
			}
			v, err := versionArg(files[0])
			if err != nil {
				return err
			}
			return c.rollback(ctx, v)
		case "apply":
			fs := flag.NewFlagSet("config apply", flag.ContinueOnError)
			fs.SetOutput(c.errOut)
			within := fs.Duration("confirm-within", 0, "revert unless `halbctl config confirm` comes within this time")
			if err := parseFlags(fs, files); err != nil {
				return err
			}
			if fs.NArg() != 1 {
				return usageError("config apply needs one FILE")
			}
			return c.apply(ctx, fs.Arg(0), *within)
		case "confirm":
			if len(files) != 0 {
				return usageError("config confirm takes no arguments")
			}
			if err := c.client.Confirm(ctx); err != nil {
				return err
			}
			fmt.Fprintln(c.out, "confirmed: the change stays in force")
			return nil
		default:
			return usageError(fmt.Sprintf("unknown config command %q", sub))
		}
	case "handover":
		if err := c.client.Handover(ctx, rest...); err != nil {
			return err
		}
		fmt.Fprintln(c.out, "handover requested: the peer takes over after its skew time")
		return nil
	case "maintenance":
		if len(rest) == 0 {
			on, err := c.client.Maintenance(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "maintenance %s\n", map[bool]string{true: "on", false: "off"}[on])
			return nil
		}
		if len(rest) != 1 || (rest[0] != "on" && rest[0] != "off") {
			return usageError("maintenance takes on or off")
		}
		if err := c.client.SetMaintenance(ctx, rest[0] == "on"); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "maintenance %s\n", rest[0])
		return nil
	case "server":
		if len(rest) == 0 {
			list, err := c.client.Drained(ctx)
			if err != nil {
				return err
			}
			if len(list) == 0 {
				fmt.Fprintln(c.out, "no server is drained")
			}
			for _, s := range list {
				fmt.Fprintf(c.out, "%s drained\n", s)
			}
			return nil
		}
		if len(rest) != 2 || (rest[0] != "drain" && rest[0] != "ready") || !strings.Contains(rest[1], "/") {
			return usageError("server takes drain|ready BACKEND/SERVER")
		}
		if _, err := c.client.DrainServer(ctx, rest[1], rest[0] == "drain"); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "server %s %s\n", rest[1], map[string]string{"drain": "drained: no new sessions", "ready": "ready"}[rest[0]])
		return nil
	case "events":
		enc := json.NewEncoder(c.out)
		return c.client.Events(ctx, func(ev api.Event) error { return enc.Encode(ev) })
	case "version":
		if len(rest) > 0 {
			return usageError("version takes no arguments")
		}
		fmt.Fprintf(c.out, "halbctl %s\n", version)
		st, err := c.client.Status(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "halbd %s (pid %d, socket %s)\n", st.Node.Version, st.Node.PID, c.socket)
		return nil
	case "console":
		return c.console(ctx, rest)
	case "logs":
		fs := flag.NewFlagSet("logs", flag.ContinueOnError)
		fs.SetOutput(c.errOut)
		n := fs.Int("n", api.DefaultLogs, "how many records")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if *n <= 0 || fs.NArg() > 0 {
			return usageError("logs takes -n N, N at least 1")
		}
		l, err := c.client.Logs(ctx, *n)
		if err != nil {
			return err
		}
		printLogs(c.out, l)
		return nil
	case "system":
		return c.system(ctx, rest)
	case "observe":
		return c.observe(ctx, rest)
	case "pair":
		return c.pair(ctx, rest)
	case "cert":
		return c.cert(ctx, rest)
	case "unpair":
		if len(rest) != 1 {
			return usageError("unpair needs the peer's NAME")
		}
		if err := c.client.Unpair(ctx, rest[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "unpaired %s\n", rest[0])
		return nil
	case "peer":
		if len(rest) != 2 || rest[0] != "resolve" || (rest[1] != "mine" && rest[1] != "theirs") {
			return usageError("peer takes resolve mine|theirs")
		}
		res, err := c.client.ResolveConflict(ctx, rest[1])
		if err != nil {
			return err
		}
		if res.Version > 0 {
			fmt.Fprintf(c.out, "conflict settled: this node's change applied again as version %d; it goes to the peer\n", res.Version)
		} else {
			fmt.Fprintln(c.out, "conflict settled: the winner stays")
		}
		return nil
	case "import":
		return c.importCmd(rest)
	case "help":
		return flag.ErrHelp
	default:
		return usageError(fmt.Sprintf("unknown command %q", cmd))
	}
}

// validate checks files locally; every problem of every file is printed.
func (c *cli) validate(files []string) error {
	var all config.Errors
	for _, f := range files {
		cfg, _, err := config.Load(f)
		switch es := config.AsErrors(err); {
		case err == nil:
			fmt.Fprintf(c.out, "%s: ok\n", f)
			for _, k := range config.Inactive(cfg) {
				fmt.Fprintf(c.errOut, "%s: warning: %s\n", f, k)
			}
		case es != nil:
			for _, e := range es {
				e.File = f
			}
			all = append(all, es...)
		default:
			all = append(all, &config.Error{File: f, Msg: err.Error()})
		}
	}
	if len(all) > 0 {
		return all
	}
	return nil
}

func (c *cli) apply(ctx context.Context, file string, within time.Duration) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	// The daemon names the file in its messages and status as given here.
	var res api.ApplyResult
	if within > 0 {
		res, err = c.client.ApplyConfirmed(ctx, file, raw, within)
	} else {
		res, err = c.client.Apply(ctx, file, raw)
	}
	changes := res.Changes
	if es := config.AsErrors(err); es != nil {
		fmt.Fprintf(c.errOut, "%s rejected; the running config stays in force:\n", file)
		return es
	}
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		fmt.Fprintln(c.out, "applied: no changes")
	} else {
		fmt.Fprintf(c.out, "applied: %d change(s)\n", len(changes))
	}
	for _, ch := range changes {
		fmt.Fprintf(c.out, "  %s\n", ch)
	}
	if !res.ConfirmBy.IsZero() {
		fmt.Fprintf(c.out, "reverts at %s unless confirmed: halbctl config confirm\n", res.ConfirmBy.Local().Format(time.TimeOnly))
	}
	return nil
}

// versionArg parses a config version given on the command line.
func versionArg(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		return 0, usageError(fmt.Sprintf("%q is not a config version (a number from halbctl config history)", s))
	}
	return v, nil
}

func (c *cli) rollback(ctx context.Context, v int) error {
	res, err := c.client.Rollback(ctx, v)
	if es := config.AsErrors(err); es != nil {
		fmt.Fprintf(c.errOut, "version %d rejected; the running config stays in force:\n", v)
		return es
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "rolled back to version %d (now version %d): %d change(s)\n", v, res.Version, len(res.Changes))
	for _, ch := range res.Changes {
		fmt.Fprintf(c.out, "  %s\n", ch)
	}
	return nil
}

// printHistory writes the config history as a table, the running
// version marked with *.
func printHistory(w io.Writer, l []api.HistoryEntry) {
	if len(l) == 0 {
		fmt.Fprintln(w, "no config applied yet")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VERSION\tAPPLIED\tSOURCE\tSHA256\tCHANGES")
	for _, e := range l {
		mark := " "
		if e.Running {
			mark = "*"
		}
		fmt.Fprintf(tw, "%s %d\t%s\t%s\t%.12s\t%s\n", mark, e.Version, e.Time.Local().Format(time.DateTime), e.Source, e.SHA256, e.Summary)
	}
	tw.Flush()
}

func (c *cli) status(ctx context.Context, asJSON bool) error {
	st, err := c.client.Status(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(c.out, st, time.Now())
	return nil
}

// printStatus writes the readable status table.
func printStatus(w io.Writer, st *api.Status, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	name := st.Node.Name
	if name == "" {
		name = "(unconfigured)"
	}
	fmt.Fprintf(tw, "node\t%s\thalbd %s, pid %d, up %s\n", name, st.Node.Version, st.Node.PID,
		now.Sub(st.Node.Started).Truncate(time.Second))
	if st.Node.Maintenance {
		fmt.Fprintf(tw, "\tMAINTENANCE\tthis node keeps no VIPs (halbctl maintenance off)\n")
	}
	if st.Config.Loaded {
		version := ""
		if st.Config.Version > 0 {
			version = fmt.Sprintf("version %d, ", st.Config.Version)
		}
		fmt.Fprintf(tw, "config\t%s\t%sapplied %s, sha256 %.12s\n", st.Config.Path, version,
			st.Config.AppliedAt.Local().Format(time.DateTime), st.Config.SHA256)
	} else {
		fmt.Fprintf(tw, "config\t%s\tno config in force\n", st.Config.Path)
	}
	if r := st.Config.LastError; r != nil {
		fmt.Fprintf(tw, "\tlast change rejected\t%s from %s, %d problem(s):\n", r.Time.Local().Format(time.DateTime), r.Source, len(r.Errors))
		for _, e := range r.Errors {
			fmt.Fprintf(tw, "\t\t  %s\n", e)
		}
	}
	if p := st.Config.Pending; p != nil {
		fmt.Fprintf(tw, "	AWAITS CONFIRMATION	version %d reverts to version %d at %s (halbctl config confirm)\n",
			p.Version, p.RevertTo, p.Deadline.Local().Format(time.TimeOnly))
	}
	printNetwork(tw, st.Network, now)
	printTime(tw, st.Time, now)
	printVRRP(tw, st.VRRP)
	printServices(tw, st.Services)
	printHealth(tw, st.Backends)
	printPeer(tw, st.Peer, now)
	printObserve(tw, st.Observe)
	printBGP(tw, st.BGP, now)
	tw.Flush()
}

// printNetwork writes the management network: the mode, each managed
// link with its addresses and lease, the gateway and name servers.
func printNetwork(w io.Writer, raw json.RawMessage, now time.Time) {
	var n netcfg.Status
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &n) != nil {
		fmt.Fprintf(w, "network\t-\tnot running\n")
		return
	}
	line := n.Mode
	if n.Gateway != "" {
		line += ", gateway " + n.Gateway
	}
	if len(n.DNS) > 0 {
		line += ", dns " + strings.Join(n.DNS, " ")
	}
	if len(n.NTP) > 0 {
		line += ", ntp " + strings.Join(n.NTP, " ")
	}
	fmt.Fprintf(w, "network\t%s\t%s\n", n.Mode, strings.TrimPrefix(strings.TrimPrefix(line, n.Mode), ", "))
	if n.Error != "" {
		fmt.Fprintf(w, "\tERROR\t%s\n", n.Error)
	}
	for _, in := range n.Interfaces {
		link := "link up"
		if !in.Carrier {
			link = "NO LINK"
		}
		fmt.Fprintf(w, "\t%s\t%s, %s, %s\n", in.Name, link, in.MAC, orNone(strings.Join(in.Addresses, " ")))
		if l := in.Lease; l != nil {
			lease := "dhcp " + l.State
			if l.Address != "" {
				lease += fmt.Sprintf(" %s from %s, renew in %s, expires in %s, %d renewal(s)", l.Address, l.Server,
					until(l.T1, now), until(l.Expiry, now), l.Renewals)
			}
			fmt.Fprintf(w, "\t\t%s\n", lease)
		}
	}
}

// printTime writes the clock: synchronised or not, the offset, the server
// chosen, and one line per server.
func printTime(w io.Writer, raw json.RawMessage, now time.Time) {
	var t timesync.Status
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &t) != nil {
		fmt.Fprintf(w, "time\t-\tnot running\n")
		return
	}
	if len(t.Servers) == 0 && t.LastSync.IsZero() {
		fmt.Fprintf(w, "time\t-\tno time server (time.servers, or from DHCP)\n")
		return
	}
	state := "not synchronised"
	if t.Synchronized {
		state = "synchronised"
	}
	line := state
	if !t.LastSync.IsZero() {
		line += fmt.Sprintf(", offset %s from %s, %s ago", signed(t.Offset), t.Server, now.Sub(t.LastSync).Truncate(time.Second))
	}
	if !t.SetClock {
		line += " (clock not set by halbd: time.set_clock off)"
	}
	fmt.Fprintf(w, "time\t%s\t%s\n", state, strings.TrimPrefix(strings.TrimPrefix(line, state), ", "))
	if t.Alarm != "" {
		fmt.Fprintf(w, "\tALARM\t%s\n", t.Alarm)
	}
	for _, s := range t.Servers {
		var line string
		switch {
		case !s.Reachable:
			line = "unreachable"
			if s.Error != "" {
				line += ": " + s.Error
			}
		default:
			line = fmt.Sprintf("offset %s, delay %s, jitter %s, stratum %d", signed(s.Offset), s.Delay.Round(time.Microsecond),
				s.Jitter.Round(time.Microsecond), s.Stratum)
		}
		switch {
		case s.Chosen:
			line += ", chosen"
		case s.Falseticker:
			line += ", FALSETICKER (dropped)"
		}
		fmt.Fprintf(w, "\t%s\t%s (%s)\n", s.Name, line, s.Source)
	}
}

// signed formats an offset with its sign, to the microsecond.
func signed(d time.Duration) string {
	d = d.Round(time.Microsecond)
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}

// until is how long from now until t, to the second; "-" when unset.
func until(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Sub(now).Truncate(time.Second).String()
}

func orNone(s string) string {
	if s == "" {
		return "no address"
	}
	return s
}

// printHealth writes one line per checked server.
func printHealth(tw io.Writer, raw json.RawMessage) {
	var bes []health.BackendHealth
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &bes) != nil {
		fmt.Fprintf(tw, "backends\t-\tnot running in this build\n")
		return
	}
	for _, be := range bes {
		for _, sv := range be.Servers {
			if sv.State == "disabled" {
				fmt.Fprintf(tw, "server %s/%s	DISABLED	%s maintenance: not checked, no traffic\n", be.Name, sv.Name, sv.Address)
				continue
			}
			line := fmt.Sprintf("%s check, %d checks, last %.1f ms, %d up / %d down transitions", be.Check, sv.Checks, sv.LatencyMS, sv.Ups, sv.Downs)
			if sv.LastError != "" {
				line += ", last error: " + sv.LastError
			}
			if sv.Reason != "" {
				line += fmt.Sprintf(" (%s since %s: %s)", sv.State, sv.LastChange.Local().Format(time.TimeOnly), sv.Reason)
			}
			fmt.Fprintf(tw, "server %s/%s\t%s\t%s %s\n", be.Name, sv.Name, strings.ToUpper(sv.State), sv.Address, line)
		}
	}
}

// printVRRP writes one line per VRRP instance.
func printVRRP(tw io.Writer, raw json.RawMessage) {
	var ins []vrrp.InstanceStatus
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &ins) != nil {
		fmt.Fprintf(tw, "vrrp\t-\tnot running in this build\n")
		return
	}
	if len(ins) == 0 {
		fmt.Fprintf(tw, "vrrp\t-\tno instances configured\n")
	}
	for _, in := range ins {
		prio := fmt.Sprint(in.Priority)
		if in.EffectivePriority != in.Priority {
			prio = fmt.Sprintf("%d (configured %d)", in.EffectivePriority, in.Priority)
		}
		held := "none"
		if len(in.HeldVIPs) > 0 {
			held = strings.Join(in.HeldVIPs, ",")
		}
		fmt.Fprintf(tw, "vrrp %s\t%s\t%s vrid %d, priority %s, master %s, holds %s, adverts %d sent %d received, %d dropped\n",
			in.Name, in.State, in.Interface, in.VRID, prio, orDash(in.Master), held,
			in.Counters.AdvertsSent, in.Counters.AdvertsReceived, in.Counters.Dropped)
		if t := in.LastTransition; t != nil {
			fmt.Fprintf(tw, "\t\t  since %s: %s\n", t.At.Local().Format(time.DateTime), t.Reason)
		}
		if len(in.FaultReasons) > 0 {
			fmt.Fprintf(tw, "\t\t  fault: %s\n", strings.Join(in.FaultReasons, "; "))
		}
		for _, tr := range in.Tracked {
			state := "ok"
			if !tr.OK {
				state = "FAILING"
				if tr.Detail != "" {
					state += " (" + tr.Detail + ")"
				}
			}
			effect := fmt.Sprintf("weight %+d", tr.Weight)
			if tr.Weight == 0 {
				effect = "fault on failure"
			}
			fmt.Fprintf(tw, "\t\t  track %s %s: %s, %s\n", tr.Kind, tr.Name, state, effect)
		}
		if in.Error != "" {
			fmt.Fprintf(tw, "\t\t  error: %s\n", in.Error)
		}
	}
}

// printServices writes one line per service and one per server.
func printServices(tw io.Writer, raw json.RawMessage) {
	var svcs []proxy.ServiceStatus
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &svcs) != nil {
		fmt.Fprintf(tw, "services\t-\tnot running in this build\n")
		return
	}
	if len(svcs) == 0 {
		fmt.Fprintf(tw, "services\t-\tnone configured\n")
	}
	for _, sv := range svcs {
		st := sv.Stats
		fmt.Fprintf(tw, "service %s\t%s\tlistening %s → %s, %d connections (%d open), %d requests, %s, %d retried, %d without a server, %d B in, %d B out\n",
			sv.Name, sv.Mode, orDash(strings.Join(sv.Listening, ",")), orDash(sv.Backend), st.Connections, st.ActiveConnections,
			st.Requests, classes(st.Responses), st.Retries, st.NoServer, st.BytesIn, st.BytesOut)
		if sv.Error != "" {
			fmt.Fprintf(tw, "\t\t  error: %s\n", sv.Error)
		}
		printTLS(tw, sv, time.Now())
		for _, be := range sv.Backends {
			extra := ""
			if be.Persistence != "" {
				extra += ", persistence " + be.Persistence
			}
			if be.TLS != "" {
				extra += ", tls " + be.TLS
			}
			if be.Queued > 0 || be.QueueMax > 0 {
				extra += fmt.Sprintf(", queue %d (max %d, %d timed out)", be.Queued, be.QueueMax, be.QueueTimeouts)
			}
			fmt.Fprintf(tw, "\t\t  backend %s %s: %d requests%s\n", be.Name, be.Balance, be.Requests, extra)
			for _, srv := range be.Servers {
				state := ""
				if srv.Backup {
					state += " backup"
				}
				switch {
				case srv.Disabled:
					state += " DISABLED (maintenance: no traffic, not checked)"
				case !srv.Up:
					state += " DOWN"
				}
				if srv.Drained {
					state += " DRAINED"
				}
				if srv.SlowStartPct > 0 {
					state += fmt.Sprintf(" (slow start: %d%%)", srv.SlowStartPct)
				}
				fmt.Fprintf(tw, "\t\t    server %s %s weight %d%s: %d active, %d total, %d connect errors, %d idle, %s\n",
					srv.Name, srv.Address, srv.Weight, state, srv.Active, srv.Total, srv.ConnectErrors, srv.Idle, classes(srv.Responses))
			}
		}
	}
}

// printTLS writes a TLS service's handshakes and certificates.
func printTLS(tw io.Writer, sv proxy.ServiceStatus, now time.Time) {
	if sv.TLS == nil {
		return
	}
	line := fmt.Sprintf("\t\t  tls %s min %s", sv.TLS.Policy, sv.TLS.MinVersion)
	if c := sv.Stats.TLS; c != nil {
		line += fmt.Sprintf(": %d handshakes (%d resumed, TLS 1.2 %d, 1.3 %d)", c.Handshakes, c.Resumed, c.TLS12, c.TLS13)
		var failed []string
		for _, r := range proxy.HandshakeFailures {
			if n := c.Failed[r]; n > 0 {
				failed = append(failed, fmt.Sprintf("%s %d", r, n))
			}
		}
		if len(failed) > 0 {
			line += ", failed: " + strings.Join(failed, " ")
		}
	}
	fmt.Fprintln(tw, line)
	for _, c := range sv.TLS.Certificates {
		def := ""
		if c.Name == sv.TLS.Default {
			def = " (default)"
		}
		if c.Error != "" {
			fmt.Fprintf(tw, "\t\t    certificate %s%s: NOT LOADED: %s\n", c.Name, def, c.Error)
			continue
		}
		days := int(c.NotAfter.Sub(now).Hours() / 24)
		when := fmt.Sprintf("expires %s (in %d days)", c.NotAfter.UTC().Format(time.DateOnly), days)
		if c.ExpiresSoon {
			when = "EXPIRES SOON: " + when
		}
		fmt.Fprintf(tw, "\t\t    certificate %s%s: %s, %s\n", c.Name, def, strings.Join(c.DNSNames, ","), when)
	}
}

// classes writes response counts by class, "2xx 10 5xx 1", or "no responses".
func classes(m map[string]int64) string {
	var parts []string
	for _, k := range []string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"} {
		if n := m[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	if len(parts) == 0 {
		return "no responses"
	}
	return strings.Join(parts, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
