package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"halb/appliance/api"
	"halb/appliance/health"
	"halb/appliance/timesync"
)

// timeTester queries time servers once (the time component).
type timeTester interface {
	Test(ctx context.Context, servers []string) []timesync.ServerStatus
}

// TestTime queries servers once (the running config's time.servers when
// none are named) without touching the clock.
func (d *Daemon) TestTime(ctx context.Context, servers []string) ([]timesync.ServerStatus, error) {
	if d.clock == nil {
		return nil, api.Errorf(api.ErrNotEnabled, "time sync is not running")
	}
	if len(servers) == 0 {
		if cfg, _ := d.Running(); cfg != nil {
			servers = cfg.Time.Servers
		}
	}
	if len(servers) == 0 {
		return nil, api.Errorf(api.ErrInvalid, "no time server to test: name one or set time.servers")
	}
	return d.clock.Test(ctx, servers), nil
}

// TestNetwork checks the management network as an operator would by hand
// (ESXi's "test management network"): ping the gateway, resolve the names
// the config uses, query the time servers, ping the peers. The checks run
// at once; each is one result, in that order.
func (d *Daemon) TestNetwork(ctx context.Context) ([]api.CheckResult, error) {
	cfg, _ := d.Running()
	var gateway string
	var ntpServers, names []string
	if st := d.netStatus(); st != nil {
		gateway = st.Gateway
		ntpServers = append(ntpServers, st.NTP...)
	}
	if cfg != nil {
		if gateway == "" {
			gateway = cfg.Node.Management.Gateway
		}
		ntpServers = append(slices.Clone(cfg.Time.Servers), ntpServers...)
		for _, p := range cfg.Peers {
			names = append(names, p.Name)
		}
	}
	for _, s := range ntpServers {
		if _, err := netip.ParseAddr(s); err != nil {
			names = append(names, s)
		}
	}
	type job struct {
		name string
		run  func(context.Context) (string, error)
	}
	ping := func(addr string) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			ck, err := health.NewChecker("icmp")
			if err != nil {
				return "", err
			}
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := ck.Check(ctx, health.Target{Addr: addr, Timeout: 2 * time.Second}); err != nil {
				return "", err
			}
			return "echo reply", nil
		}
	}
	var jobs []job
	if gateway == "" {
		jobs = append(jobs, job{"ping gateway", func(context.Context) (string, error) {
			return "", fmt.Errorf("no gateway (none configured, none from DHCP)")
		}})
	} else {
		jobs = append(jobs, job{"ping gateway " + gateway, ping(gateway)})
	}
	for _, n := range slices.Compact(slices.Sorted(slices.Values(names))) {
		jobs = append(jobs, job{"resolve " + n, func(ctx context.Context) (string, error) {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			addrs, err := net.DefaultResolver.LookupHost(ctx, n)
			if err != nil {
				return "", err
			}
			return fmt.Sprint(addrs), nil
		}})
	}
	for _, s := range slices.Compact(ntpServers) {
		jobs = append(jobs, job{"time server " + s, func(ctx context.Context) (string, error) {
			l, err := d.TestTime(ctx, []string{s})
			if err != nil {
				return "", err
			}
			if len(l) == 0 || !l[0].Reachable {
				why := "no answer"
				if len(l) > 0 && l[0].Error != "" {
					why = l[0].Error
				}
				return "", fmt.Errorf("%s", why)
			}
			return fmt.Sprintf("offset %s, stratum %d", l[0].Offset.Round(time.Microsecond), l[0].Stratum), nil
		}})
	}
	if cfg != nil {
		for _, p := range cfg.Peers {
			jobs = append(jobs, job{"ping peer " + p.Name + " " + p.Address, ping(p.Address)})
		}
	}
	out := make([]api.CheckResult, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			detail, err := j.run(ctx)
			r := api.CheckResult{Name: j.name, OK: err == nil, Detail: detail, Took: time.Since(start)}
			if err != nil {
				r.Detail = err.Error()
			}
			out[i] = r
		}()
	}
	wg.Wait()
	return out, nil
}
