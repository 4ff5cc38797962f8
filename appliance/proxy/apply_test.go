package proxy

import (
	"fmt"
	"net"
	"slices"
	"testing"
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
