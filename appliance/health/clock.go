package health

import "time"

// clock is what the checking loop reads the time and waits with; tests
// give the component a fake one to step through intervals, rise/fall and
// jitter without sleeping.
type clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once after d.
	NewTimer(d time.Duration) timer
}

type timer interface {
	C() <-chan time.Time
	// Reset re-arms a timer that has fired (and been received from).
	Reset(d time.Duration)
	Stop()
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time   { return r.t.C }
func (r realTimer) Reset(d time.Duration) { r.t.Reset(d) }
func (r realTimer) Stop()                 { r.t.Stop() }
