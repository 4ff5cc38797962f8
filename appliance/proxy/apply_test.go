package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestApplyTakesEffectBeforeReturning: once Apply returns, the proxy works
// with the new config: an added service listens, a removed one is gone from
// the status. (The daemon reports a config applied, and halbctl returns,
// when Apply has returned.)
func TestApplyTakesEffectBeforeReturning(t *testing.T) {
	o := newOrigin(t, "o")
	web, side := freePort(t), freePort(t)
	base := httpConfig(web, "", servers(o.addr()))
	with := fmt.Sprintf("node: {name: lb1}\nservices:\n  - {name: web, listen: [\"%s\"], default_backend: b0}\n  - {name: side, listen: [\"%s\"], default_backend: b1}\nbackends:\n  - name: b0\n%s  - name: b1\n%s",
		web, side, servers(o.addr()), servers(o.addr()))
	c := run(t, mustConfig(t, base))
	waitListening(t, web)
	names := func() []string {
		var out []string
		for _, s := range c.Status().([]ServiceStatus) {
			if len(s.Listening) > 0 {
				out = append(out, s.Name)
			}
		}
		return out
	}
	for i := range 20 {
		c.Apply(mustConfig(t, with))
		if got := names(); !slices.Equal(got, []string{"web", "side"}) {
			t.Fatalf("round %d: services listening right after Apply: %v, want [web side]", i, got)
		}
		cn, err := net.Dial("tcp", side)
		if err != nil {
			t.Fatalf("round %d: the added service refused a connection right after Apply: %v", i, err)
		}
		cn.Close()
		c.Apply(mustConfig(t, base))
		if got := names(); !slices.Equal(got, []string{"web"}) {
			t.Fatalf("round %d: services listening right after Apply: %v, want [web]", i, got)
		}
	}
}

// TestKeepAliveRequestAfterApplyUsesNewConfig: a request that comes on a
// keep-alive connection after Apply returned goes to the servers of the
// new config, however soon it follows the previous response on that
// connection (the connection may still be waiting with its buffer).
func TestKeepAliveRequestAfterApplyUsesNewConfig(t *testing.T) {
	a, b := newOrigin(t, "a"), newOrigin(t, "b")
	listen := freePort(t)
	cfgs := []string{httpConfig(listen, "", servers(a.addr())), httpConfig(listen, "", servers(b.addr()))}
	c := run(t, mustConfig(t, cfgs[0]))
	waitListening(t, listen)
	cn, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	br := bufio.NewReader(cn)
	ask := func() string {
		cn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(cn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("X-Server")
	}
	if got := ask(); got != "a" {
		t.Fatalf("first request answered by %q, want a", got)
	}
	for i := 1; i <= 20; i++ {
		c.Apply(mustConfig(t, cfgs[i%2]))
		want := []string{"a", "b"}[i%2]
		if got := ask(); got != want {
			t.Fatalf("change %d: the next request on the connection went to %q, want %q (the config applied before it was sent)", i, got, want)
		}
	}
}
