package daemon

import (
	"path/filepath"

	"halb/appliance/api"
	"halb/appliance/certs"
)

// certStore is the store of TLS certificates: <state-dir>/certs (a
// factory reset removes it with the rest of the state).
func (d *Daemon) certStore() *certs.Store {
	return &certs.Store{Dir: filepath.Join(d.opts.StateDir, "certs")}
}

// apiOptions are what the API serves beside the daemon's methods.
func (d *Daemon) apiOptions() api.Options {
	return api.Options{Certs: d.certStore()}
}
