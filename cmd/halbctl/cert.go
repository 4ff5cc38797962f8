package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"halb/appliance/api"
	"halb/appliance/certs"
)

// cert runs `halbctl cert add|list|remove`.
func (c *cli) cert(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError("cert needs add, list or remove")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "add":
		return c.certAdd(ctx, rest)
	case "list":
		if len(rest) > 0 {
			return usageError("cert list takes no arguments")
		}
		l, err := c.client.CertList(ctx)
		if err != nil {
			return err
		}
		printCerts(c.out, l, time.Now())
		return nil
	case "remove":
		if len(rest) != 1 {
			return usageError("cert remove needs one NAME")
		}
		if err := c.client.CertRemove(ctx, rest[0]); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "certificate %s removed\n", rest[0])
		return nil
	}
	return usageError(fmt.Sprintf("unknown cert command %q", args[0]))
}

// certAdd runs `halbctl cert add NAME --cert FILE --key FILE [--replace]`;
// NAME may come before or after the flags.
func (c *cli) certAdd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("cert add", flag.ContinueOnError)
	fs.SetOutput(c.errOut)
	certFile := fs.String("cert", "", "PEM chain: the certificate, then each issuer")
	keyFile := fs.String("key", "", "PEM private key of the certificate, unencrypted")
	replace := fs.Bool("replace", false, "replace the certificate stored as NAME")
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return err
		}
	}
	if name == "" || fs.NArg() > 0 || *certFile == "" || *keyFile == "" {
		return usageError("cert add needs NAME --cert FILE --key FILE [--replace]")
	}
	certPEM, err := os.ReadFile(*certFile)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	info, err := c.client.CertAdd(ctx, name, certPEM, keyPEM, *replace)
	if err != nil {
		return err
	}
	verb := "added"
	if *replace {
		verb = "stored"
	}
	names := strings.Join(info.SANs, " ")
	if names == "" {
		names = "no DNS or IP names"
	}
	fmt.Fprintf(c.out, "certificate %s %s: %s, %s\n", info.Name, verb, info.Subject, names)
	fmt.Fprintf(c.out, "%s, chain of %d, issued by %s, expires %s\nsha256 %s\n", info.KeyType, info.Chain, info.Issuer, expiry(info.Info, time.Now()), info.Fingerprint)
	for _, w := range info.Warnings {
		fmt.Fprintf(c.out, "warning: %s\n", w)
	}
	if len(info.InUseBy) > 0 {
		fmt.Fprintf(c.out, "in use by %s\n", strings.Join(info.InUseBy, ", "))
	}
	return nil
}

// expiry writes when a certificate ends: "2027-03-05 (in 90 days)",
// "2026-12-10 (expires in 5 days!)", "2026-12-01 (EXPIRED 4 days ago)".
func expiry(i certs.Info, now time.Time) string {
	date := i.NotAfter.Local().Format(time.DateOnly)
	left := i.NotAfter.Sub(now)
	days := int(left.Abs() / (24 * time.Hour))
	var when string
	switch {
	case left < 0:
		when = "EXPIRED " + dayCount(days) + " ago"
	case certs.ExpiresSoon(i, now):
		when = "expires in " + dayCount(days) + "!"
	default:
		when = "in " + dayCount(days)
	}
	return date + " (" + when + ")"
}

func dayCount(n int) string {
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

// printCerts writes the stored certificates as a table; why an entry
// cannot be used follows the table.
func printCerts(w io.Writer, l []api.CertInfo, now time.Time) {
	if len(l) == 0 {
		fmt.Fprintln(w, "no certificate stored (halbctl cert add NAME --cert FILE --key FILE)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSUBJECT\tSANS\tEXPIRES\tKEY\tCHAIN\tIN-USE")
	var broken []string
	for _, i := range l {
		users := orDash(strings.Join(i.InUseBy, ", "))
		if i.Error != "" {
			broken = append(broken, i.Name+": "+i.Error)
		}
		if i.Subject == "" && i.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\tERROR (below)\t-\t-\t%s\n", i.Name, users)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", i.Name, i.Subject, sans(i.SANs), expiry(i.Info, now), i.KeyType, i.Chain, users)
	}
	tw.Flush()
	for _, b := range broken {
		fmt.Fprintf(w, "ERROR %s\n", b)
	}
}

// sans shortens a list of names for the table: the first two and a count.
func sans(l []string) string {
	switch {
	case len(l) == 0:
		return "NONE (CN only)"
	case len(l) > 2:
		return fmt.Sprintf("%s,%s +%d", l[0], l[1], len(l)-2)
	}
	return strings.Join(l, ",")
}
