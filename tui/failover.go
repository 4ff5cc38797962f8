package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"halb/appliance/vrrp"
)

// failoverTest is "test failover": a planned handover of this node's
// VIPs to the peer and back, with the VRRP transition times both ways as
// halbd recorded them. The handover is make-before-break: this node keeps
// the VIPs until it hears the peer as master, so clients see no outage.
type failoverTest struct {
	start time.Time
	runs  map[string]*failoverRun // by instance
	order []string
	err   error
	done  bool
}

type failoverRun struct {
	gave, back time.Time // this node left MASTER; became MASTER again
	peer       string    // the master heard while BACKUP
	preempt    bool
}

// failoverTimeout bounds the wait for the peer to take over and for the
// VIPs to come back.
const failoverTimeout = time.Minute

func newFailoverTest(c *Context) (*failoverTest, tea.Cmd) {
	f := &failoverTest{start: c.Opts.Now(), runs: map[string]*failoverRun{}}
	var names []string
	for _, in := range c.VRRP {
		if in.State == vrrp.StateMaster {
			names = append(names, in.Name)
			f.runs[in.Name] = &failoverRun{}
			f.order = append(f.order, in.Name)
		}
	}
	if len(names) == 0 {
		f.err = fmt.Errorf("this node is MASTER of no VRRP instance: run the test on the master")
		f.done = true
		return f, nil
	}
	client := c.Client
	return f, act("test failover: hand over", func(ctx context.Context) error {
		return client.Handover(ctx, names...)
	})
}

func (f *failoverTest) Update(c *Context, msg tea.Msg) (Screen, tea.Cmd) {
	switch m := msg.(type) {
	case actionDoneMsg:
		if m.err != nil {
			f.err, f.done = m.err, true
		}
	case statusMsg:
		f.observe(c)
	case tea.KeyMsg:
		if m.String() == "esc" || m.String() == "enter" && f.done {
			return NewDashboard(c), nil
		}
	}
	return f, nil
}

// observe reads the instances' last transitions since the test began.
func (f *failoverTest) observe(c *Context) {
	if f.done {
		return
	}
	all := true
	for _, in := range c.VRRP {
		r := f.runs[in.Name]
		if r == nil {
			continue
		}
		r.preempt = preemptOf(c, in.Name)
		if t := in.LastTransition; t != nil && t.At.After(f.start) {
			switch {
			case t.To == vrrp.StateBackup && r.gave.IsZero():
				r.gave = t.At
			case t.To == vrrp.StateMaster && !r.gave.IsZero() && r.back.IsZero():
				r.back = t.At
			}
		}
		if in.State == vrrp.StateBackup && in.Master != "" {
			r.peer = in.Master
		}
		if r.back.IsZero() && (r.preempt || r.peer == "") {
			all = false
		}
	}
	if all || c.Opts.Now().Sub(f.start) > failoverTimeout {
		f.done = true
	}
}

// preemptOf reads an instance's preempt setting from the running config
// the status reports (true when unknown: the default).
func preemptOf(c *Context, name string) bool {
	if c.Running == nil {
		return true
	}
	for _, v := range c.Running.VRRP {
		if v.Name == name {
			return v.PreemptOn()
		}
	}
	return true
}

func (f *failoverTest) View(c *Context, w, h int) string {
	t := c.Theme
	var b strings.Builder
	b.WriteString(t.Title.Render(pad(" test failover: to the peer and back", w)) + "\n\n")
	if f.err != nil {
		b.WriteString(t.Error.Render(f.err.Error()) + "\n")
		return b.String()
	}
	for _, name := range f.order {
		r := f.runs[name]
		b.WriteString(t.Bold.Render(name) + "\n")
		switch {
		case r.gave.IsZero():
			b.WriteString("  handing over" + t.Ellip + "\n")
			continue
		default:
			peer := r.peer
			if peer == "" {
				peer = "the peer"
			}
			b.WriteString(fmt.Sprintf("  to %s: this node was BACKUP %s after the request; it kept the VIPs until %s was heard as master (no outage for clients)\n",
				peer, seconds(r.gave.Sub(f.start)), peer))
		}
		switch {
		case !r.back.IsZero():
			b.WriteString(fmt.Sprintf("  back: MASTER again %s after the handover (preempt)\n", seconds(r.back.Sub(r.gave))))
		case !r.preempt:
			b.WriteString("  back: preempt is off here, so the peer keeps the VIPs; hand them back from the peer's console\n")
		case f.done:
			b.WriteString(t.Error.Render("  back: not MASTER again within "+failoverTimeout.String()) + "\n")
		default:
			b.WriteString("  back: waiting for this node to take the VIPs back" + t.Ellip + "\n")
		}
	}
	if f.done {
		b.WriteString("\n" + t.Bold.Render("done") + "\n")
	}
	return b.String()
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func (f *failoverTest) Help(c *Context) []Binding {
	if f.done {
		return []Binding{{"enter", "back to the dashboard"}}
	}
	return []Binding{{"esc", "back (the test goes on in halbd)"}}
}
