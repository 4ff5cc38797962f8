package api

import (
	"sync"
	"time"
)

// Broker fans events out to the subscribers of the event stream. Publishing
// never blocks: a subscriber that does not keep up loses events, and the
// count of lost events is reported to it in a "events.dropped" event.
type Broker struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
	now  func() time.Time
}

type subscriber struct {
	ch      chan Event
	dropped int
}

// NewBroker returns an empty broker.
func NewBroker() *Broker {
	return &Broker{subs: map[*subscriber]struct{}{}, now: time.Now}
}

// Publish sends ev to every subscriber, stamping its time if unset.
func (b *Broker) Publish(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = b.now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.dropped > 0 {
			select {
			case s.ch <- Event{Time: ev.Time, Type: "events.dropped", Message: "subscriber too slow", Data: map[string]int{"dropped": s.dropped}}:
				s.dropped = 0
			default:
				s.dropped++
				continue
			}
		}
		select {
		case s.ch <- ev:
		default:
			s.dropped++
		}
	}
}

// Subscribe returns a channel of events and a function that ends the
// subscription and closes the channel.
func (b *Broker) Subscribe(buffer int) (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, buffer)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
			close(s.ch)
		})
	}
}
