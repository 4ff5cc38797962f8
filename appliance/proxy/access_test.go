package proxy

import (
	"sync"
	"testing"

	"halb/appliance/logs"
	"halb/internal/testutil"
)

// captureLog is an access logger that keeps copies of the records.
type captureLog struct {
	mu   sync.Mutex
	recs []logs.Access
}

func (c *captureLog) Access(r *logs.Access) {
	c.mu.Lock()
	c.recs = append(c.recs, *r)
	c.mu.Unlock()
}

func (c *captureLog) all() []logs.Access {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]logs.Access(nil), c.recs...)
}

// wait waits for n records and returns them.
func (c *captureLog) wait(t *testing.T, n int) []logs.Access {
	t.Helper()
	testutil.WaitFor(t, "access records", func() bool { return len(c.all()) >= n })
	return c.all()
}
