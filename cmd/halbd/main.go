// Command halbd is the halb daemon: it owns a node's VIPs, listeners,
// checks and peers, and serves the control API that halbctl and the console
// use.
//
//	halbd -config /etc/halb/halb.yaml [-socket /run/halb/halb.sock] [-state-dir /var/lib/halb]
//	      [-system-actions [-systemctl PATH]]
//
// SIGHUP reloads the config file (an invalid file is rejected and the running
// config stays); SIGTERM and SIGINT shut down in order.
//
// -system-actions lets the control API reboot, power off and factory-reset
// the machine (the console's recovery menu); only the appliance's unit
// passes it, so that a development machine or a netlab node never acts on
// its host. -systemctl names the program run as "PATH reboot" and "PATH
// poweroff" instead of systemctl: for tests.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"halb/appliance/api"
	"halb/appliance/bgp"
	"halb/appliance/bgp/gobgp"
	"halb/appliance/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var (
		configPath = flag.String("config", "/etc/halb/halb.yaml", "config file")
		socket     = flag.String("socket", api.DefaultSocket, "control API unix socket")
		stateDir   = flag.String("state-dir", "/var/lib/halb", "directory for state kept across restarts")
		debug      = flag.Bool("debug", false, "log at debug level")
		system     = flag.Bool("system-actions", false, "let the control API reboot, power off and factory-reset this machine (the appliance)")
		appliance  = flag.Bool("appliance", false, "own the machine (the image): DHCP on every wired link, resolv.conf and the clock until the config says otherwise")
		systemctl  = flag.String("systemctl", "systemctl", "program run as `PATH` reboot|poweroff (tests give a fake)")
		showVer    = flag.Bool("version", false, "print the version and exit")
	)
	flag.Parse()
	if *showVer {
		fmt.Println("halbd", version)
		return
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "halbd: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := daemon.NewLogger(level)
	slog.SetDefault(log)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	d := daemon.New(daemon.Options{
		ConfigPath: *configPath,
		SocketPath: *socket,
		StateDir:   *stateDir,
		Version:    version,
		Logger:     log,
		Notify:     daemon.SdNotify,

		SystemActions: *system,
		Systemctl:     *systemctl,
		Appliance:     *appliance,
		BGPEngine:     func(log *slog.Logger) bgp.Engine { return gobgp.New(log) },
	})
	// The daemon's logger also keeps the last records for GET /v1/logs.
	log = d.Logger()
	slog.SetDefault(log)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading config")
				d.Reload()
			}
		}
	}()
	go daemon.Watchdog(ctx)

	if err := d.Run(ctx); err != nil {
		log.Error("halbd failed", "err", err)
		os.Exit(1)
	}
}
