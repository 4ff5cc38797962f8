package netlab

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"halb/appliance/certs/certstest"
	"halb/appliance/config"
	"halb/appliance/health"
	"halb/appliance/proxy"
)

// tlsNamerOn serves TLS on addr inside h with a certificate of root for
// name; each connection gets "<who>\n" after the handshake.
func tlsNamerOn(t *testing.T, h *Host, addr, who, name string, root *certstest.CA) {
	t.Helper()
	leaf := root.Leaf(t, certstest.Options{CN: name, DNS: []string{name}})
	cert, err := tls.X509KeyPair(certstest.Cat(leaf.CertPEM, root.PEM), leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := h.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() != nil {
					return
				}
				// An http check's request gets a response; a client gets
				// the name.
				buf := make([]byte, 4)
				tc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if n, _ := tc.Read(buf); n == 4 && string(buf) == "GET " {
					io.WriteString(tc, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
					return
				}
				fmt.Fprintf(tc, "%s\n", who)
			}()
		}
	}()
}

// TestTLSRoutesAndServers, on a halb node of the classic lab: SNI routing
// of TLS that halb does not terminate sends each name to its backend (the
// client's handshake is with the server, whose certificate it verifies),
// plain HTTP on that port is refused and counted; a backend with tls
// verifies its servers: its CA passes the http check, another CA fails it
// with the reason in status.
func TestTLSRoutesAndServers(t *testing.T) {
	SkipUnlessRoot(t)
	row := reportRow(t, "tls-sni-routes-and-servers", string(FlavorHalb))
	_, c, ctx := peerLab(t)
	lb1 := c.LB[0]
	root, other := certstest.Root(t, "lab root"), certstest.Root(t, "other root")
	tlsNamerOn(t, c.BEHosts[0], ":9443", "be1", "a.example.com", root)
	tlsNamerOn(t, c.BEHosts[1], ":9443", "be2", "x.b.example.com", root)
	dir := t.TempDir()
	rootFile, otherFile := filepath.Join(dir, "root.pem"), filepath.Join(dir, "other.pem")
	os.WriteFile(rootFile, root.PEM, 0o644)
	os.WriteFile(otherFile, other.PEM, 0o644)
	be1, be2 := c.BEHosts[0].Addr("eth0", 4).String()+":9443", c.BEHosts[1].Addr("eth0", 4).String()+":9443"
	editRunning(t, lb1, func(cfg *config.Config) {
		cfg.Services = append(cfg.Services, config.Service{Name: "pass", Mode: "tcp", Listen: []string{ClassicVIP + ":9443"}, DefaultBackend: "tls-a",
			SNIRoutes: []config.SNIRoute{{SNI: "a.example.com", Backend: "tls-a"}, {SNI: "*.b.example.com", Backend: "tls-b"}}})
		check := config.Health{Check: "http", Path: "/", Interval: config.Duration(200 * time.Millisecond), Timeout: config.Duration(time.Second), Rise: 1, Fall: 1}
		cfg.Backends = append(cfg.Backends,
			config.Backend{Name: "tls-a", Servers: []config.Server{{Name: "be1", Address: be1}}},
			config.Backend{Name: "tls-b", Servers: []config.Server{{Name: "be2", Address: be2}}},
			config.Backend{Name: "tls-good", Health: check, TLS: &config.BackendTLS{CA: rootFile, ServerName: "a.example.com"}, Servers: []config.Server{{Name: "be1", Address: be1}}},
			config.Backend{Name: "tls-wrong", Health: check, TLS: &config.BackendTLS{CA: otherFile, ServerName: "a.example.com"}, Servers: []config.Server{{Name: "be1", Address: be1}}})
	})
	pool := x509.NewCertPool()
	pool.AddCert(root.Cert)
	via := func(sni string) (string, error) {
		nc, err := c.Client.Dial(ctx, "tcp", ClassicVIP+":9443")
		if err != nil {
			return "", err
		}
		tc := tls.Client(nc, &tls.Config{RootCAs: pool, ServerName: sni})
		defer tc.Close()
		tc.SetDeadline(time.Now().Add(3 * time.Second))
		b := make([]byte, 16)
		n, err := io.ReadAtLeast(tc, b, 4)
		return strings.TrimSpace(string(b[:n])), err
	}
	var got string
	var err error
	if !WaitFor(10*time.Second, func() bool { got, err = via("a.example.com"); return err == nil }) {
		t.Fatalf("a.example.com through the VIP: %v", err)
	}
	if got != "be1" {
		t.Errorf("a.example.com reached %q, want be1", got)
	}
	if got, err = via("x.b.example.com"); got != "be2" || err != nil {
		t.Errorf("x.b.example.com reached %q (%v), want be2", got, err)
	}
	plain, err := c.Client.Dial(ctx, "tcp", ClassicVIP+":9443")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(plain, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	plain.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, _ := plain.Read(make([]byte, 1)); n != 0 {
		t.Error("plain HTTP on the SNI-routed port got an answer")
	}
	plain.Close()

	var sni *proxy.SNICounters
	var good, wrong health.ServerHealth
	if !WaitFor(10*time.Second, func() bool {
		st, err := lb1.API().Status(ctx)
		if err != nil {
			return false
		}
		var svcs []proxy.ServiceStatus
		var bhs []health.BackendHealth
		json.Unmarshal(st.Services, &svcs)
		json.Unmarshal(st.Backends, &bhs)
		for _, s := range svcs {
			if s.Name == "pass" {
				sni = s.Stats.SNI
			}
		}
		for _, b := range bhs {
			if len(b.Servers) == 1 && b.Name == "tls-good" {
				good = b.Servers[0]
			}
			if len(b.Servers) == 1 && b.Name == "tls-wrong" {
				wrong = b.Servers[0]
			}
		}
		return sni != nil && sni.Refused["not_tls"] == 1 && good.State == "up" && wrong.State == "down" && wrong.LastError != ""
	}) {
		t.Fatalf("status: sni %+v; tls-good %+v; tls-wrong %+v", sni, good, wrong)
	}
	if !strings.Contains(wrong.LastError, "certificate signed by unknown authority") {
		t.Errorf("the wrong CA's check error: %q", wrong.LastError)
	}
	row.Notef("SNI: a.example.com → be1, x.b.example.com → be2 (routed %d, default %d, refused %v); backend tls: its CA up, another CA down: %q", sni.Routed, sni.Default, sni.Refused, wrong.LastError)
}
