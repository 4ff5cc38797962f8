package daemon

import (
	"crypto/tls"
	"path/filepath"
	"time"

	"halb/appliance/api"
	"halb/appliance/certs"
)

// certStore is the store of TLS certificates: <state-dir>/certs (a
// factory reset removes it with the rest of the state).
func (d *Daemon) certStore() *certs.Store {
	return &certs.Store{Dir: filepath.Join(d.opts.StateDir, "certs")}
}

// apiOptions are what the API serves beside the daemon's methods; the
// import files are where the image's halb-seed keeps them from the seed
// disk (<state-dir>/import).
func (d *Daemon) apiOptions() api.Options {
	return api.Options{Certs: d.certStore(), CertUsers: d.certUsers, CertsChanged: d.proxy.ReloadCerts,
		ImportDir: filepath.Join(d.opts.StateDir, "import")}
}

// certUsers names the services of the running config that serve the
// stored certificate name.
func (d *Daemon) certUsers(name string) []string {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	if cfg == nil {
		return nil
	}
	var out []string
	for _, s := range cfg.Services {
		if s.TLS == nil {
			continue
		}
		for _, c := range s.TLS.Certificates {
			if c.Name == name && c.Cert == "" {
				out = append(out, "service "+s.Name)
			}
		}
	}
	return out
}

// loadCerts has the proxy load certificates from the store (and from
// files with the store's checks, the proxy's own loader).
func (d *Daemon) loadCerts() {
	store := d.certStore()
	d.proxy.SetCertLoaders(func(name string, now time.Time) (tls.Certificate, error) {
		c, _, err := store.Load(name, now)
		return c, err
	}, nil)
}
