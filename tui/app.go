package tui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/appliance/netcfg"
	"halb/appliance/timesync"
)

// Client is what the console needs of halbd's control API; *api.Client
// implements it, unit tests fake it.
type Client interface {
	Status(ctx context.Context) (*api.Status, error)
	Config(ctx context.Context) ([]byte, error)
	ApplyConfig(ctx context.Context, raw []byte) ([]config.Change, error)
	Events(ctx context.Context, fn func(api.Event) error) error
	Handover(ctx context.Context, instances ...string) error
	Import(ctx context.Context, node string) (api.ImportResult, error)
	SetMaintenance(ctx context.Context, on bool) error
	DrainServer(ctx context.Context, server string, drain bool) ([]string, error)
	Interfaces(ctx context.Context) ([]api.Interface, error)
	ConsoleAuth(ctx context.Context) (api.ConsoleAuth, error)
	CheckConsolePassword(ctx context.Context, password string) error
	SetConsolePassword(ctx context.Context, password, old string) error
	History(ctx context.Context) ([]api.HistoryEntry, error)
	HistoryConfig(ctx context.Context, version int) ([]byte, error)
	Rollback(ctx context.Context, version int) (api.ApplyResult, error)
	Logs(ctx context.Context, n int) ([]api.LogRecord, error)
	Reboot(ctx context.Context) error
	Poweroff(ctx context.Context) error
	FactoryReset(ctx context.Context, nodeName string) error
	ApplyConfirmed(ctx context.Context, name string, raw []byte, within time.Duration) (api.ApplyResult, error)
	Confirm(ctx context.Context) error
	RevertNow(ctx context.Context) error
	TestNetwork(ctx context.Context) ([]api.CheckResult, error)
	TestTime(ctx context.Context, servers []string) ([]timesync.ServerStatus, error)
	// The peer requests (appliance/api/peer.go).
	StartPairing(ctx context.Context) (api.PairingCode, error)
	Pairing(ctx context.Context) (api.PairingCode, error)
	CancelPairing(ctx context.Context) error
	JoinPeer(ctx context.Context, address string, port int, code string) (api.JoinResult, error)
	Unpair(ctx context.Context, name string) error
	ResolveConflict(ctx context.Context, keep string) (api.ApplyResult, error)
}

// *api.Client is what the console runs on.
var _ Client = (*api.Client)(nil)

// Options configure the console.
type Options struct {
	// Socket is shown in the "reconnecting" banner.
	Socket string
	// Version is the console's own version.
	Version string
	// Appliance: the console is the machine's only screen (tty1, ttyS0):
	// ctrl+c does not quit, and `!` offers a root shell.
	Appliance bool
	// Shell runs the root shell (sulogin) on `!`; nil: no shell.
	Shell func() tea.Cmd
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Poll is how often status is read. Default: 1s.
	Poll time.Duration
}

// Context is what every screen works with: the API, the terminal, the
// theme and the latest data from the daemon. Screens read it; only the
// App writes it.
type Context struct {
	Client Client
	Theme  *Theme
	Opts   Options

	Width, Height int

	// Status is the last status read; nil before the first answer.
	Status   *api.Status
	StatusAt time.Time
	// Connected is false from a failed call until the next good one;
	// ConnErr says why.
	Connected bool
	ConnErr   error
	// Events are the daemon's events, newest first (at most maxEvents).
	Events []api.Event
	// Rates holds each service's requests per second over the last minute.
	Rates *Rates

	// Running is the running config (read again when its digest in the
	// status changes); nil while unconfigured or not yet read.
	Running    *config.Config
	runningSHA string
	// Auth says whether actions need the console password (read with
	// the running config).
	Auth     api.ConsoleAuth
	authRead bool // asked for
	// AuthKnown: Auth holds the daemon's answer; until then actions wait.
	AuthKnown bool

	// parsed component status, decoded from Status
	VRRP     []VRRPInstance
	Services []ServiceStatus
	Health   []BackendHealth
	// Network and Time are the management network's and the clock's
	// status; nil when the daemon does not run them.
	Network *netcfg.Status
	Time    *timesync.Status
	// Peer is status.peer: the peer link and what this node knows of
	// its peers; nil when the daemon does not run the peer component.
	Peer *api.PeerStatus
	// BGP is status.bgp: the BGP sessions and VIPs; nil when the config
	// has no bgp.
	BGP *api.BGPStatus
	// Observe is the metrics listener's part of status.observe; nil when
	// the daemon does not run it.
	Observe *ObserveListener
}

// ObserveListener is what the console shows of status.observe.listener
// (metrics.Status, not imported: the console needs two fields).
type ObserveListener struct {
	Listen    string `json:"listen"`
	Listening string `json:"listening"`
	Error     string `json:"error"`
}

const maxEvents = 500

// Screen is one page of the console: a wizard, the dashboard, a form. It
// gets every message the App does not handle itself and returns the screen
// to show next (itself, or another).
type Screen interface {
	Update(c *Context, msg tea.Msg) (Screen, tea.Cmd)
	View(c *Context, width, height int) string
	// Help is the help line's keys for the screen's current state.
	Help(c *Context) []Binding
}

// Binding is one key of a help line.
type Binding struct{ Key, Help string }

// App is the console's root model: it owns the connection to the daemon,
// the terminal size and the current screen.
type App struct {
	c      *Context
	screen Screen
	// chosen is set once the first status decided between the wizard and
	// the dashboard.
	chosen bool
	// retry is the reconnect backoff; polling holds a poll in flight;
	// stale is set when an event came while it was (the poll may have
	// read the status before the event's change): one more fetch follows
	// it.
	retry   time.Duration
	polling bool
	stale   bool
	// events: the stream's channel while it is followed.
	events    chan api.Event
	streamGen int
}

// New returns the console's model.
func New(client Client, theme *Theme, opts Options) *App {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	c := &Context{Client: client, Theme: theme, Opts: opts, Width: 80, Height: 24, Rates: newRates(60)}
	return &App{c: c, screen: &connecting{}}
}

// Messages.
type (
	statusMsg struct {
		st  *api.Status
		err error
		at  time.Time
	}
	pollMsg     struct{}
	streamMsg   struct{ gen int }
	eventMsg    struct{ ev api.Event }
	streamEnded struct {
		gen int
		err error
	}
	// ShowMsg switches to another screen (a screen's command may return it).
	ShowMsg struct{ Screen Screen }
	// errMsg reports a failed API call to the status line.
	errMsg struct{ err error }
)

// Init starts polling status and following the event stream.
func (a *App) Init() tea.Cmd {
	a.polling = true
	return tea.Batch(a.fetchStatus(), a.follow())
}

func (a *App) fetchStatus() tea.Cmd {
	client, now := a.c.Client, a.c.Opts.Now
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		st, err := client.Status(ctx)
		return statusMsg{st: st, err: err, at: now()}
	}
}

// follow subscribes to the event stream: a goroutine feeds a channel that
// a re-armed command reads (nextEvent). A new subscription ends the old.
func (a *App) follow() tea.Cmd {
	a.streamGen++
	gen := a.streamGen
	ch := make(chan api.Event, 64)
	a.events = ch
	client := a.c.Client
	return func() tea.Msg {
		go func() {
			err := client.Events(context.Background(), func(ev api.Event) error {
				ch <- ev
				return nil
			})
			ch <- api.Event{Type: streamEndType, Message: errString(err)}
			close(ch)
		}()
		return streamMsg{gen: gen}
	}
}

const streamEndType = "\x00end"

func nextEvent(ch chan api.Event, gen int) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok || ev.Type == streamEndType {
			return streamEnded{gen: gen, err: errors.New(ev.Message)}
		}
		return eventMsg{ev: ev}
	}
}

// Update handles the messages of the App and hands the rest to the screen.
func (a *App) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if testHook != nil && testHook(a, msg) {
		return a, nil
	}
	c := a.c
	switch m := msg.(type) {
	case tea.WindowSizeMsg:
		c.Width, c.Height = m.Width, m.Height
		return a, nil
	case tea.KeyMsg:
		if m.Type == tea.KeyCtrlC && !c.Opts.Appliance {
			return a, tea.Quit
		}
		if m.String() == "!" && c.Opts.Shell != nil && !typing(a.screen) {
			return a, c.Opts.Shell()
		}
	case statusMsg:
		a.polling = false
		cmd := a.takeStatus(m)
		if a.stale {
			a.stale, a.polling = false, true
			cmd = tea.Batch(cmd, a.fetchStatus())
		}
		return a, cmd
	case pollMsg:
		if a.polling {
			return a, nil
		}
		a.polling = true
		return a, a.fetchStatus()
	case streamMsg:
		if m.gen != a.streamGen {
			return a, nil
		}
		return a, nextEvent(a.events, m.gen)
	case eventMsg:
		c.Events = append([]api.Event{m.ev}, c.Events...)
		if len(c.Events) > maxEvents {
			c.Events = c.Events[:maxEvents]
		}
		// A state change shows at once, not at the next poll.
		cmds := []tea.Cmd{nextEvent(a.events, a.streamGen)}
		if !a.polling {
			a.polling = true
			cmds = append(cmds, a.fetchStatus())
		} else {
			a.stale = true
		}
		s, cmd := a.screen.Update(c, msg)
		a.screen = s
		return a, tea.Batch(append(cmds, cmd)...)
	case streamEnded:
		if m.gen != a.streamGen {
			return a, nil
		}
		// Resubscribe after a pause; the status poll shows the outage.
		return a, tea.Tick(time.Second, func(time.Time) tea.Msg { return resubscribeMsg{gen: m.gen} })
	case resubscribeMsg:
		if m.gen != a.streamGen {
			return a, nil
		}
		return a, a.follow()
	case runningMsg:
		switch {
		case m.sha != c.runningSHA:
		case m.cfg != nil || m.sha == "":
			c.Running, c.Auth, c.AuthKnown = m.cfg, m.auth, true
		default:
			c.authRead = false // read it again with the next status
		}
		return a, nil
	case ShowMsg:
		a.screen = m.Screen
		if i, ok := m.Screen.(interface{ Init(*Context) tea.Cmd }); ok {
			return a, i.Init(c)
		}
		return a, nil
	}
	s, cmd := a.screen.Update(c, msg)
	a.screen = s
	return a, cmd
}

type resubscribeMsg struct{ gen int }

// runningMsg carries the running config.
type runningMsg struct {
	sha  string
	cfg  *config.Config
	auth api.ConsoleAuth
}

func fetchRunning(client Client, sha string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var cfg *config.Config
		if sha != "" {
			raw, err := client.Config(ctx)
			if err != nil {
				return runningMsg{sha: sha}
			}
			cfg, _ = config.Parse("running", raw)
		}
		auth, err := client.ConsoleAuth(ctx)
		if err != nil {
			auth = api.ConsoleAuth{Required: true, PasswordSet: true} // ask rather than not
		}
		return runningMsg{sha: sha, cfg: cfg, auth: auth}
	}
}

// testHook lets the package's tests look at the App between messages.
var testHook func(*App, tea.Msg) bool

// ShellDoneMsg reports the end of the root shell.
type ShellDoneMsg struct{ Err error }

// typing reports whether the screen's focus is on a text field, which
// takes every printable key.
func typing(s Screen) bool {
	t, ok := s.(interface{ Typing() bool })
	return ok && t.Typing()
}

// takeStatus records a status answer and schedules the next poll: at the
// poll interval while connected, with a growing backoff (to 5s) while not.
func (a *App) takeStatus(m statusMsg) tea.Cmd {
	c := a.c
	var cmds []tea.Cmd
	if m.err != nil {
		c.Connected, c.ConnErr = false, m.err
		a.retry = min(max(a.retry*2, 500*time.Millisecond), 5*time.Second)
	} else {
		wasDown := !c.Connected && c.Status != nil
		c.Connected, c.ConnErr = true, nil
		a.retry = 0
		c.Status, c.StatusAt = m.st, m.at
		c.decode()
		c.Rates.add(m.at, c.Services)
		if sha := m.st.Config.SHA256; sha != c.runningSHA || !c.authRead {
			c.runningSHA, c.authRead = sha, true
			if sha == "" {
				c.Running = nil
			}
			cmds = append(cmds, fetchRunning(c.Client, sha))
		}
		if !a.chosen {
			a.chosen = true
			var s Screen
			if !m.st.Config.Loaded {
				s = NewWizard(c, nil)
			} else {
				s = NewDashboard(c)
			}
			cmds = append(cmds, func() tea.Msg { return ShowMsg{Screen: s} })
		}
		if wasDown {
			cmds = append(cmds, a.follow()) // the daemon restarted: a new stream
		}
	}
	wait := c.Opts.Poll
	if a.retry > 0 {
		wait = a.retry
	}
	cmds = append(cmds, tea.Tick(wait, func(time.Time) tea.Msg { return pollMsg{} }))
	s, cmd := a.screen.Update(c, m)
	a.screen = s
	return tea.Batch(append(cmds, cmd)...)
}

// View draws the current screen with the connection banner and the help
// line.
func (a *App) View() string {
	c := a.c
	w, h := max(c.Width, 20), max(c.Height, 5)
	var top string
	if !c.Connected && c.ConnErr != nil {
		top = c.Theme.Bad.Render(truncate(fmt.Sprintf("reconnecting to halbd (%s): %v", c.Opts.Socket, c.ConnErr), w)) + "\n"
	}
	bodyH := h - 1 - strings.Count(top, "\n")
	body := a.screen.View(c, w, bodyH)
	out := top + fit(body, w, bodyH) + "\n" + helpLine(c.Theme, a.screen.Help(c), w)
	if c.Theme.ASCII {
		out = asciiOnly(out)
	}
	return out
}

// decode parses the component parts of the status the dashboard shows.
func (c *Context) decode() {
	c.VRRP, c.Services, c.Health, c.Network, c.Time, c.Peer, c.BGP, c.Observe = nil, nil, nil, nil, nil, nil, nil, nil
	if c.Status == nil {
		return
	}
	json.Unmarshal(c.Status.VRRP, &c.VRRP)
	json.Unmarshal(c.Status.Services, &c.Services)
	json.Unmarshal(c.Status.Backends, &c.Health)
	var n netcfg.Status
	if json.Unmarshal(c.Status.Network, &n) == nil && n.Mode != "" {
		c.Network = &n
	}
	var t timesync.Status
	if len(c.Status.Time) > 0 && string(c.Status.Time) != "null" && json.Unmarshal(c.Status.Time, &t) == nil {
		c.Time = &t
	}
	var p api.PeerStatus
	if len(c.Status.Peer) > 0 && string(c.Status.Peer) != "null" && json.Unmarshal(c.Status.Peer, &p) == nil {
		c.Peer = &p
	}
	var bs api.BGPStatus
	if len(c.Status.BGP) > 0 && string(c.Status.BGP) != "null" && json.Unmarshal(c.Status.BGP, &bs) == nil {
		c.BGP = &bs
	}
	var o struct {
		Listener ObserveListener `json:"listener"`
	}
	if len(c.Status.Observe) > 0 && string(c.Status.Observe) != "null" && json.Unmarshal(c.Status.Observe, &o) == nil {
		c.Observe = &o.Listener
	}
}

func errString(err error) string {
	if err == nil {
		return "stream ended"
	}
	return err.Error()
}

// connecting is the screen before the daemon first answered.
type connecting struct{}

func (s *connecting) Update(c *Context, msg tea.Msg) (Screen, tea.Cmd) { return s, nil }

func (s *connecting) View(c *Context, w, h int) string {
	return c.Theme.Bold.Render("halb console") + "\n\n" + "waiting for halbd" + c.Theme.Ellip
}

func (s *connecting) Help(c *Context) []Binding { return nil }
