package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"halb/appliance/config"
	"halb/appliance/importer"
)

// importCmd runs `halbctl import`: a node's keepalived.conf and haproxy.cfg
// (and optionally its peer's) become halb.yaml; every directive without an
// exact equivalent is in the report, and then nothing is written unless
// --allow-partial.
func (c *cli) importCmd(args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(c.errOut)
	var a, b importer.Options
	fs.StringVar(&a.Keepalived, "keepalived", "", "the node's keepalived.conf")
	fs.StringVar(&a.HAProxy, "haproxy", "", "the node's haproxy.cfg")
	fs.StringVar(&a.NodeName, "node-name", "", "node.name (default: keepalived's router_id, else lb1)")
	out := fs.String("o", "-", "where to write halb.yaml (- for standard output)")
	fs.StringVar(&b.Keepalived, "peer-keepalived", "", "the peer's keepalived.conf (a pair)")
	fs.StringVar(&b.HAProxy, "peer-haproxy", "", "the peer's haproxy.cfg (a pair)")
	fs.StringVar(&b.NodeName, "peer-node-name", "", "the peer's node.name")
	peerOut := fs.String("peer-o", "", "where to write the peer's halb.yaml (required for a pair)")
	reportOut := fs.String("report", "", "also write the report to this file")
	partial := fs.Bool("allow-partial", false, "write the result even when some directives did not map exactly")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("import takes only flags")
	}
	if a.Keepalived == "" && a.HAProxy == "" {
		return usageError("import needs --keepalived FILE, --haproxy FILE or both")
	}
	pair := b.Keepalived != "" || b.HAProxy != ""
	if pair && *peerOut == "" {
		return usageError("a pair import needs --peer-o FILE for the peer's halb.yaml")
	}
	if !pair && (*peerOut != "" || b.NodeName != "") {
		return usageError("--peer-o and --peer-node-name need --peer-keepalived or --peer-haproxy")
	}
	var ra, rb *importer.Result
	var err error
	if pair {
		ra, rb, err = importer.ImportPair(a, b)
	} else {
		ra, err = importer.Import(a)
	}
	if err != nil {
		return err
	}
	text := ra.Report.String()
	if pair {
		text = "== " + ra.Config.Node.Name + "\n" + text + "== " + rb.Config.Node.Name + "\n" + rb.Report.String()
	}
	fmt.Fprint(c.errOut, text)
	if *reportOut != "" {
		if err := writeFile(*reportOut, []byte(text)); err != nil {
			return err
		}
	}
	if (ra.Report.Partial() || (rb != nil && rb.Report.Partial())) && !*partial {
		return fmt.Errorf("import: some directives did not map exactly (the report above); nothing written: check them, then run again with --allow-partial")
	}
	if err := c.writeOut(*out, ra.YAML); err != nil {
		return err
	}
	if rb != nil {
		return c.writeOut(*peerOut, rb.YAML)
	}
	return nil
}

func (c *cli) writeOut(path string, data []byte) error {
	if path == "-" {
		_, err := c.out.Write(data)
		return err
	}
	if err := writeFile(path, data); err != nil {
		return err
	}
	fmt.Fprintf(c.errOut, "wrote %s\n", path)
	return nil
}

// writeFile writes a new or regular file atomically (never half written);
// anything else that exists (/dev/null, a FIFO, /dev/stdout) is written to
// as it is, not replaced by a file.
func writeFile(path string, data []byte) error {
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		return errors.Join(err, f.Close())
	}
	return config.WriteFile(path, data, 0o644)
}
