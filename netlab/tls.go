package netlab

// Helpers of the TLS scenario (tls_test.go): programs run inside a host
// with their output, HAProxy's runtime API, and testssl.sh's findings.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"time"
)

// Run runs argv inside the host, stdin fed from stdin, and returns what it
// wrote to stdout and stderr; ctx bounds it.
func (h *Host) Run(ctx context.Context, stdin []byte, argv ...string) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var o, e bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &o, &e
	// The child inherits the namespace of the thread that forks it; the
	// wait needs no namespace.
	if err := h.Do(cmd.Start); err != nil {
		return nil, nil, fmt.Errorf("netlab: %s: start %s: %w", h.Name, argv[0], err)
	}
	err = cmd.Wait()
	return o.Bytes(), e.Bytes(), err
}

// HAProxyCommand sends one command of HAProxy's runtime API to its admin
// socket (RefPaths.HAProxySocket) and returns the answer. A command with a
// payload ("set ssl cert FILE <<\n" and the PEM) ends it with an empty
// line, which HAProxyCommand adds.
func HAProxyCommand(socket, cmd string) (string, error) {
	c, err := net.DialTimeout("unix", socket, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("netlab: HAProxy runtime API: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if !strings.HasSuffix(cmd, "\n") {
		cmd += "\n"
	}
	if strings.Contains(cmd, "<<\n") {
		cmd += "\n"
	}
	if _, err := io.WriteString(c, cmd); err != nil {
		return "", fmt.Errorf("netlab: HAProxy runtime API: %w", err)
	}
	b, err := io.ReadAll(c) // non-interactive mode: HAProxy closes after the answer
	if err != nil {
		return string(b), fmt.Errorf("netlab: HAProxy runtime API: %w", err)
	}
	return string(b), nil
}

// TestsslFinding is one finding of testssl.sh's flat JSON (--jsonfile).
type TestsslFinding struct {
	ID       string `json:"id"`
	IP       string `json:"ip"`
	Port     string `json:"port"`
	Severity string `json:"severity"` // INFO, OK, LOW, MEDIUM, HIGH, CRITICAL, WARN, FATAL, DEBUG
	CVE      string `json:"cve"`
	CWE      string `json:"cwe"`
	Finding  string `json:"finding"`
}

// ParseTestssl reads testssl.sh's flat JSON output.
func ParseTestssl(b []byte) ([]TestsslFinding, error) {
	var fs []TestsslFinding
	if err := json.Unmarshal(b, &fs); err != nil {
		return nil, fmt.Errorf("netlab: testssl JSON: %w", err)
	}
	return fs, nil
}

// Bad reports whether the finding is a problem: rated HIGH or CRITICAL,
// or saying vulnerable (not "not vulnerable") or "not ok".
func (f TestsslFinding) Bad() bool {
	if f.Severity == "HIGH" || f.Severity == "CRITICAL" {
		return true
	}
	l := strings.ToLower(f.Finding)
	return strings.Contains(l, "not ok") ||
		strings.Contains(strings.ReplaceAll(l, "not vulnerable", ""), "vulnerable")
}

// Offered reports whether a protocol finding (SSLv2 ... TLS1_3) says the
// server offers it.
func (f TestsslFinding) Offered() bool {
	return strings.HasPrefix(f.Finding, "offered")
}
