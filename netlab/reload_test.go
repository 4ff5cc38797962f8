package netlab

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// reloadHealth is the check of the reload scenario's backends: on, at
// HAProxy's default interval.
const reloadHealth = "check: tcp, interval: 2s, timeout: 1s, rise: 2, fall: 3"

// reloadBase is the config the reload scenario starts from: web on :80 over
// s1..s4.
func reloadBase() SoloConfig {
	return SoloConfig{
		Services: []SoloService{{Name: "web", Port: 80, Backend: "web"}},
		Backends: []SoloBackend{{Name: "web", Health: reloadHealth,
			Servers: []SoloServer{{Name: "s1"}, {Name: "s2"}, {Name: "s3"}, {Name: "s4"}}}},
	}
}

// reloadStep is one config change of the reload scenario.
type reloadStep struct {
	what   string
	change func(c *SoloConfig)
}

func addServer(name string) reloadStep {
	return reloadStep{"add " + name, func(c *SoloConfig) {
		be := c.Backend("web")
		be.Servers = append(be.Servers, SoloServer{Name: name})
	}}
}

func removeServer(name string) reloadStep {
	return reloadStep{"remove " + name, func(c *SoloConfig) {
		be := c.Backend("web")
		be.Servers = slices.DeleteFunc(be.Servers, func(s SoloServer) bool { return s.Name == name })
	}}
}

func reweight(name string, w int) reloadStep {
	return reloadStep{fmt.Sprintf("weight %s %d", name, w), func(c *SoloConfig) {
		be := c.Backend("web")
		for i := range be.Servers {
			if be.Servers[i].Name == name {
				be.Servers[i].Weight = w
			}
		}
	}}
}

// reloadSidePort is where the service that comes and goes listens.
const reloadSidePort = 81

func addService(servers ...string) reloadStep {
	return reloadStep{"add service web2", func(c *SoloConfig) {
		be := SoloBackend{Name: "web2", Health: reloadHealth}
		for _, s := range servers {
			be.Servers = append(be.Servers, SoloServer{Name: s})
		}
		c.Services = append(c.Services, SoloService{Name: "web2", Port: reloadSidePort, Backend: "web2"})
		c.Backends = append(c.Backends, be)
	}}
}

var removeService = reloadStep{"remove service web2", func(c *SoloConfig) {
	c.Services = slices.DeleteFunc(c.Services, func(s SoloService) bool { return s.Name == "web2" })
	c.Backends = slices.DeleteFunc(c.Backends, func(b SoloBackend) bool { return b.Name == "web2" })
}}

// reloadSteps are the changes, in order: servers added, removed and
// reweighted, a service added and removed twice. Every server of s1..s8
// leaves web at least once or joins it.
var reloadSteps = []reloadStep{
	addServer("s5"), reweight("s1", 3), removeServer("s2"), addService("s7", "s8"), addServer("s6"),
	removeServer("s3"), reweight("s5", 5), addServer("s2"), removeServer("s1"), removeService,
	addServer("s7"), reweight("s6", 2), removeServer("s4"), addService("s8"), removeServer("s5"),
	addServer("s3"), reweight("s2", 4), removeServer("s6"), removeService, addServer("s1"),
}

// TestReloadUnderLoad: a steady mixed load (100 requests/s on keep-alive
// connections, 100/s on new ones) while the config changes 20 times —
// servers added, removed and reweighted, a service added and removed. halb
// changes by `halbctl config apply` and by SIGHUP in turn; HAProxy by its
// master-worker reload (SIGUSR2). Asserted for halb: no failed request,
// and no request reaches a server after its removal was applied; for both:
// every change takes effect (an added server gets requests, an added
// service answers at once, a removed one stops listening).
//
// "After its removal was applied" is exact: every backend records the
// arrival of each request with the time the client started it (the
// probe's X-Netlab-Sent). A request the client started after the change
// was applied (halbctl returned, the config.applied event came, HAProxy's
// master logged the new worker loaded) can only have been sent to a server
// by a proxy that had the new config; a change under way when the request
// started may have it go to the servers of either config.
func TestReloadUnderLoad(t *testing.T) {
	rounds := pick(1, 5) // make soak: 104 changes
	hold := 600 * time.Millisecond
	soloScenario(t, "reload-under-load", 8, reloadBase(), func(t *testing.T, s *Solo, row *Row) {
		cfgs := []SoloConfig{s.Config()}
		var reloads []Reload
		ka := s.Probe(context.Background(), 80, 100, true, 2*time.Second)
		nc := s.Probe(context.Background(), 80, 100, false, 2*time.Second)
		time.Sleep(time.Second)
		change := func(next SoloConfig, what string) {
			r, err := s.Apply(next, len(reloads)%2 == 1)
			if err != nil {
				ka.Stop()
				nc.Stop()
				t.Fatalf("change %d (%s): %v", len(reloads)+1, what, err)
			}
			reloads = append(reloads, r)
			cfgs = append(cfgs, next)
			checkSideService(t, s, cfgs[len(cfgs)-2], next, len(reloads), what)
			time.Sleep(hold)
		}
		for round := range rounds {
			if round > 0 {
				change(reloadBase(), "back to the start")
			}
			for _, step := range reloadSteps {
				next := cfgs[len(cfgs)-1].Clone()
				step.change(&next)
				change(next, step.what)
			}
		}
		time.Sleep(time.Second)
		rk, rn := ka.Stop(), nc.Stop()
		row.Sent, row.Failed = rk.Sent+rn.Sent, rk.Failed+rn.Failed

		late := reloadViolations(s, cfgs, reloads)
		unused := unusedAdditions(s, cfgs, reloads)
		byHow := map[string][]time.Duration{}
		for _, r := range reloads {
			byHow[r.How] = append(byHow[r.How], r.Applied.Sub(r.Start))
		}
		for _, how := range []string{"halbctl config apply", "SIGHUP", "SIGUSR2"} {
			if d := byHow[how]; len(d) > 0 {
				slices.Sort(d)
				row.Notef("%d changes by %s, applied within %s (median), %s (max)", len(d), how, ms(d[len(d)/2]), ms(d[len(d)-1]))
			}
		}
		row.Notef("keep-alive client %d/%d failed, new-connection client %d/%d failed", rk.Failed, rk.Sent, rn.Failed, rn.Sent)
		if row.Failed > 0 {
			row.Notef("failures: %s", joinNonEmpty(errorKinds(rk), errorKinds(rn)))
		}
		row.Notef("%d requests reached a server after its removal was applied%s", len(late), firstOf(late))
		for _, u := range unused {
			t.Errorf("change took no effect: %s", u)
		}
		if s.Flavor == FlavorHalb {
			if row.Failed > 0 {
				t.Errorf("%d of %d requests failed across %d config changes: %s; %s", row.Failed, row.Sent, len(reloads), errorKinds(rk), errorKinds(rn))
			}
			if len(late) > 0 {
				t.Errorf("%d requests reached a server after its removal was applied: %s", len(late), strings.Join(late[:min(len(late), 5)], "; "))
			}
		}
	})
}

func firstOf(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return " (first: " + list[0] + ")"
}

// checkSideService checks that a service added by the change answers at
// once, and that a removed one stops listening.
func checkSideService(t *testing.T, s *Solo, prev, next SoloConfig, n int, what string) {
	t.Helper()
	had, has := prev.Backend("web2") != nil, next.Backend("web2") != nil
	switch {
	case has && !had:
		be, err := s.Get(s.URL(reloadSidePort))
		if err != nil || !slices.Contains(next.ServerNames("web2"), be) {
			t.Errorf("change %d (%s): the added service did not answer at once: backend %q, %v", n, what, be, err)
		}
	case had && !has:
		start := time.Now()
		var err error
		if !WaitFor(5*time.Second, func() bool {
			_, err = s.Get(s.URL(reloadSidePort))
			return err != nil && strings.Contains(err.Error(), "refused")
		}) {
			t.Errorf("change %d (%s): the removed service still listens after %s: %v", n, what, time.Since(start).Round(time.Millisecond), err)
		}
	}
}

// reloadViolations lists the requests that reached a server of web after
// its removal was applied: started by the client after change k was
// applied, at a server neither in config k nor, when change k+1 had begun,
// in config k+1.
func reloadViolations(s *Solo, cfgs []SoloConfig, reloads []Reload) []string {
	var out []string
	for name, b := range s.Servers {
		for _, a := range b.Arrivals() {
			if a.Sent.IsZero() {
				continue // not the probe's (the side service's checks)
			}
			k := 0 // changes applied before the request started
			for k < len(reloads) && reloads[k].Applied.Before(a.Sent) {
				k++
			}
			allowed := cfgs[k].ServerNames("web")
			if k < len(reloads) && !a.Sent.Before(reloads[k].Start) {
				allowed = append(allowed, cfgs[k+1].ServerNames("web")...)
			}
			if !slices.Contains(allowed, name) {
				after := "before any change"
				if k > 0 {
					after = fmt.Sprintf("%s after change %d was applied", ms(a.Sent.Sub(reloads[k-1].Applied)), k)
				}
				out = append(out, fmt.Sprintf("%s got a request started %s (arrived %s later)", name, after, ms(a.At.Sub(a.Sent))))
			}
		}
	}
	slices.Sort(out)
	return out
}

// unusedAdditions lists the servers added to web by a change that got no
// request started while that config was in force.
func unusedAdditions(s *Solo, cfgs []SoloConfig, reloads []Reload) []string {
	var out []string
	for k, r := range reloads {
		end := time.Now()
		if k+1 < len(reloads) {
			end = reloads[k+1].Start
		}
		for _, name := range cfgs[k+1].ServerNames("web") {
			if slices.Contains(cfgs[k].ServerNames("web"), name) {
				continue
			}
			got := 0
			for _, a := range s.Servers[name].Arrivals() {
				if a.Sent.After(r.Applied) && a.Sent.Before(end) {
					got++
				}
			}
			if got == 0 {
				out = append(out, fmt.Sprintf("change %d added %s, which got no request in the %s it was in force", k+1, name, end.Sub(r.Applied).Round(time.Millisecond)))
			}
		}
	}
	return out
}
