package vrrp

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
)

// Notify hooks (keepalived's notify): on every state change the instance's
// configured program runs as `program NAME STATE PRIORITY`. The state
// machine never waits for it: changes are queued and a goroutine of the
// instance runs them one at a time, in order, each killed after its
// timeout.

// maxNotifyQueue bounds the changes waiting for the program. When a hung
// program lets more pile up, the oldest waiting one is dropped (and
// logged): the latest state is what the program must see.
const maxNotifyQueue = 64

// notifyState is the STATE argument: the state's name, or STOP when the
// instance stopped (daemon shutdown, instance removed), as keepalived says.
func notifyState(s State) string {
	if s == StateInit {
		return "STOP"
	}
	return s.String()
}

type notification struct {
	state    State
	priority int
}

// notifier runs one instance's notify program.
type notifier struct {
	instance, program string
	timeout           time.Duration
	run               programRunner
	log               *slog.Logger

	mu      sync.Mutex
	queue   []notification
	closing bool
	kick    chan struct{}
	done    chan struct{}
}

func newNotifier(instance, program string, timeout time.Duration, run programRunner, log *slog.Logger) *notifier {
	return &notifier{instance: instance, program: program, timeout: timeout, run: run, log: log,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
}

// notify queues a run for a state change. It never blocks.
func (n *notifier) notify(s State, priority int) {
	n.mu.Lock()
	if n.closing {
		n.mu.Unlock()
		return
	}
	if len(n.queue) == maxNotifyQueue {
		dropped := n.queue[0]
		n.queue = n.queue[1:]
		n.log.Warn("notify program falls behind; a state change is not notified",
			"program", n.program, "state", notifyState(dropped.state), "priority", dropped.priority)
	}
	n.queue = append(n.queue, notification{s, priority})
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// loop runs the queued notifications until close; it returns after the
// last queued one has run.
func (n *notifier) loop() {
	defer close(n.done)
	for {
		n.mu.Lock()
		if len(n.queue) == 0 {
			closing := n.closing
			n.mu.Unlock()
			if closing {
				return
			}
			<-n.kick
			continue
		}
		x := n.queue[0]
		n.queue = n.queue[1:]
		n.mu.Unlock()
		n.runOne(x)
	}
}

func (n *notifier) runOne(x notification) {
	argv := []string{n.program, n.instance, notifyState(x.state), strconv.Itoa(x.priority)}
	start := time.Now()
	ok, detail := runProgram(context.Background(), n.run, argv, n.timeout)
	args := []any{"program", n.program, "state", argv[2], "priority", x.priority, "took", time.Since(start).Round(time.Millisecond)}
	if ok {
		n.log.Info("notify program ran", append(args, "exit", "status 0")...)
	} else {
		n.log.Warn("notify program failed", append(args, "exit", detail)...)
	}
}

// close lets the queued notifications run (each within its timeout), then
// stops the loop and waits for it.
func (n *notifier) close() {
	n.mu.Lock()
	n.closing = true
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
	<-n.done
}
