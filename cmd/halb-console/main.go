// Command halb-console is the appliance's console: a terminal program that
// sets a node up (a wizard when halbd runs unconfigured) and runs it (a
// dashboard with actions). It talks to halbd's control API only.
//
//	halb-console [-socket PATH] [-ascii auto|on|off] [-appliance]
//
// On the appliance, halb-console@.service runs it on tty1 and ttyS0 with
// -appliance: ctrl+c does not quit, and `!` asks for root's password
// (sulogin) for a shell.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"syscall"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"halb/appliance/api"
	"halb/tui"
)

var version = "dev"

func main() {
	socket := flag.String("socket", api.DefaultSocket, "halbd's control socket")
	ascii := flag.String("ascii", "auto", "draw with ASCII only: auto (from TERM and the locale), on, off")
	appliance := flag.Bool("appliance", false, "the machine's console: ctrl+c does not quit, ! gives a root shell (sulogin)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file (measuring the console's cost)")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "halb-console:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *showVersion {
		fmt.Println("halb-console", version)
		return
	}
	useASCII := tui.NeedsASCII(os.Getenv)
	switch *ascii {
	case "on":
		useASCII = true
	case "off":
		useASCII = false
	case "auto":
	default:
		fmt.Fprintln(os.Stderr, "halb-console: -ascii takes auto, on or off")
		os.Exit(2)
	}
	r := lipgloss.NewRenderer(os.Stdout)
	r.SetColorProfile(tui.ProfileFor(os.Getenv("TERM"), os.Stdout))
	opts := tui.Options{Socket: *socket, Version: version, Appliance: *appliance}
	if *appliance {
		opts.Shell = rootShell
		// The console is the machine's screen: it does not stop on the
		// keys that would end a shell's program.
		signal.Ignore(syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTSTP)
	}
	client := api.NewClient(*socket)
	defer client.Close()
	// The configs applied here are the console's in the config history.
	client.SetAgent(api.SourceConsole)
	app := tui.New(client, tui.NewTheme(r, useASCII), opts)
	p := tea.NewProgram(app, tea.WithAltScreen(), tea.WithFPS(20))
	if _, err := p.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "halb-console:", err)
		os.Exit(1)
	}
}

// rootShell runs sulogin on the console's terminal: it asks for root's
// password and gives a root shell; while root is locked it gives none.
func rootShell() tea.Cmd {
	tty, err := os.Readlink("/proc/self/fd/0")
	if err != nil {
		tty = "/dev/console"
	}
	cmd := exec.Command("sulogin", tty)
	return tea.ExecProcess(cmd, func(err error) tea.Msg { return tui.ShellDoneMsg{Err: err} })
}
