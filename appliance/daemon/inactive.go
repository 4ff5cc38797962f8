package daemon

import "halb/appliance/config"

// warnInactive logs each key that cfg sets but that this build does not use
// (config.InactiveKeys), so that nobody believes it took effect.
func (d *Daemon) warnInactive(cfg *config.Config) {
	for _, k := range config.Inactive(cfg) {
		d.log.Warn("config key not active in this build: parsed and validated, but nothing uses it",
			"key", k.Key, "until", k.Until)
	}
}
