package config

import "sync"

// Latest holds the most recent config handed to a component and wakes the
// component's loop: Set may be called from any goroutine, the loop reads
// Get after a signal on Changed. Signals coalesce, so a burst of reloads
// costs one reconcile, and the loop always sees the newest config.
type Latest struct {
	mu  sync.Mutex
	cfg *Config
	ch  chan struct{}
}

// Set stores cfg and signals the loop.
func (l *Latest) Set(cfg *Config) {
	ch := l.Changed()
	l.mu.Lock()
	l.cfg = cfg
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Get returns the newest config, nil before the first Set.
func (l *Latest) Get() *Config {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// Changed signals after Set.
func (l *Latest) Changed() chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ch == nil {
		l.ch = make(chan struct{}, 1)
	}
	return l.ch
}
