package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"

	"halb/appliance/logs"
)

// Termination states of the access records, HAProxy's two letters
// (configuration.txt 8.5, "Session state at disconnection"): the first
// says who ended the session (C client, S server, P proxy; c and s a
// client or server timeout; - normal), the second in which stage (R
// request, Q queue, C connect, H response headers, D data; - normal).
var (
	stNormal = [2]byte{'-', '-'}
	stCR     = [2]byte{'C', 'R'} // the client closed before a complete request head
	stcR     = [2]byte{'c', 'R'} // the client's head did not complete in time (408)
	stPR     = [2]byte{'P', 'R'} // the proxy refused the request (400, 413, 414, 431, ...)
	stsQ     = [2]byte{'s', 'Q'} // no server slot within timeouts.queue (503)
	stSC     = [2]byte{'S', 'C'} // no server, or connecting refused or failed (503)
	stsC     = [2]byte{'s', 'C'} // the last connection attempt timed out (503)
	stSH     = [2]byte{'S', 'H'} // the server closed or failed before its response head (502)
	stsH     = [2]byte{'s', 'H'} // no response head within timeouts.server (504)
	stPH     = [2]byte{'P', 'H'} // the proxy refused the server's response head (502)
	stSD     = [2]byte{'S', 'D'} // the server closed or failed during the data
	stsD     = [2]byte{'s', 'D'} // the server idle for its timeout during the data
	stCD     = [2]byte{'C', 'D'} // the client closed or failed during the data
	stcD     = [2]byte{'c', 'D'} // the client idle for its timeout during the data
	stPD     = [2]byte{'P', 'D'} // the proxy refused a malformed chunked body
)

// isTimeout reports whether err is a deadline or a dial timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// byTimeout is the termination state of an error of side who ('C' or 'S')
// in stage: a timeout is told by the lower-case letter.
func byTimeout(err error, who, stage byte) [2]byte {
	if isTimeout(err) {
		who += 'a' - 'A'
	}
	return [2]byte{who, stage}
}

// noConnection is the termination state of a session no server took:
// queue timeout (sQ), else the last connection attempt's timeout (sC) or
// failure, or no server at all (SC).
func noConnection(pickErr, dialErr error) [2]byte {
	switch {
	case errors.Is(pickErr, errQueueTimeout):
		return stsQ
	case dialErr != nil && isTimeout(dialErr):
		return stsC
	}
	return stSC
}

// newRecord starts an access record: every timing not reached (-1).
func newRecord(start time.Time, client netip.AddrPort, service string, http bool) logs.Access {
	return logs.Access{Start: start, Client: client, Service: service, HTTP: http,
		Request: -1, Queue: -1, Connect: -1, Response: -1, Total: -1}
}

// addTime adds d to a timing that may still be -1 (not reached).
func addTime(t *time.Duration, d time.Duration) {
	*t = max(*t, 0) + d
}

// pickTimed picks a server as pick does, counting the wait in the record's
// queue time and the backend's histogram, and gives the session to the
// server it returns. After a failed attempt on prev (nil for the first),
// it counts the retry, and a redispatch when the session goes elsewhere.
// It returns when the pick ended.
func (be *backend) pickTimed(tried *triedSet, key []byte, client netip.Addr, cookie string, queueTimeout time.Duration,
	rec *logs.Access, svc *serviceStats, prev *server) (session, time.Time, error) {
	t0 := time.Now()
	sess, err := be.pick(context.Background(), tried, key, client, cookie, queueTimeout)
	t1 := time.Now()
	addTime(&rec.Queue, t1.Sub(t0))
	be.stats.queueTime.observe(t1.Sub(t0))
	if err != nil {
		return sess, t1, err
	}
	if prev != nil {
		rec.Retries++
		svc.retries.Add(1)
		be.stats.retries.Add(1)
		prev.stats.retries.Add(1)
		if sess.srv != prev {
			rec.Redispatched = true
			be.stats.redispatches.Add(1)
			prev.stats.redispatches.Add(1)
		}
	}
	be.acquire(sess.srv, t1)
	rec.Server = sess.srv.name
	return sess, t1, nil
}

// dialTimed dials s as dial does, from since (when the session was
// given), counting the time in the record's connect time and, connected,
// in the backend's histogram.
func (be *backend) dialTimed(s *server, timeout time.Duration, src, dst netip.AddrPort, since time.Time, rec *logs.Access) (*upstream, error) {
	c, err := be.dial(context.Background(), s, timeout, src, dst)
	d := time.Since(since)
	addTime(&rec.Connect, d)
	if err == nil {
		be.stats.connectTime.observe(d)
	}
	return c, err
}

// account adds an ended record to the counters of the backend and server
// it went to (be and srv may be nil) and the service's total time, and
// hands it to the access log when the service has one on.
func (s *service) account(st *serviceState, rec *logs.Access, be *backend, srv *server) {
	if rec.Termination == ([2]byte{}) {
		rec.Termination = stNormal
	}
	s.stats.totalTime.observe(rec.Total)
	if be != nil {
		bs := be.stats
		bs.bytesIn.Add(rec.BytesIn)
		bs.bytesOut.Add(rec.BytesOut)
		bs.totalTime.observe(rec.Total)
		if rec.Status != 0 {
			bs.responses[statusClass(rec.Status)].Add(1)
		}
	}
	if srv != nil {
		srv.stats.bytesIn.Add(rec.BytesIn)
		srv.stats.bytesOut.Add(rec.BytesOut)
	}
	if st != nil && st.cfg.AccessLog {
		if l := s.comp.accessLog(); l != nil {
			l.Access(rec)
		}
	}
}
