package proxy

import (
	"crypto/tls"
	"net"
	"time"
)

// deadlines caches a connection's read and write deadlines: setting one
// costs a runtime timer update, so a new one is set only when it differs
// from the one in force by more than a tolerance. 0 is none (or unknown).
type deadlines struct{ r, w mono }

// read makes c's read deadline at, give or take tol.
func (d *deadlines) read(c streamConn, at time.Time, tol time.Duration) {
	m := monoOf(at)
	if diff := time.Duration(m - d.r); d.r == 0 || diff > tol || diff < -tol {
		c.SetReadDeadline(at)
		d.r = m
	}
}

// write makes c's write deadline at, give or take tol.
func (d *deadlines) write(c streamConn, at time.Time, tol time.Duration) {
	m := monoOf(at)
	if diff := time.Duration(m - d.w); d.w == 0 || diff > tol || diff < -tol {
		c.SetWriteDeadline(at)
		d.w = m
	}
}

// clear removes both deadlines.
func (d *deadlines) clear(c streamConn) {
	c.SetDeadline(time.Time{})
	*d = deadlines{}
}

// upstream is a server connection with its cached deadlines, over TLS
// when t is set.
type upstream struct {
	*net.TCPConn
	t   *tls.Conn
	dl  deadlines
	raw *rawIO // made by its first sendThenRead
}

func (u *upstream) Read(b []byte) (int, error) {
	if u.t != nil {
		return u.t.Read(b)
	}
	return u.TCPConn.Read(b)
}

func (u *upstream) Write(b []byte) (int, error) {
	if u.t != nil {
		return u.t.Write(b)
	}
	return u.TCPConn.Write(b)
}

// Close closes the connection; over TLS after a close_notify if it can be
// sent at once.
func (u *upstream) Close() error {
	if u.t != nil {
		u.TCPConn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		return u.t.Close()
	}
	return u.TCPConn.Close()
}

func (u *upstream) CloseWrite() error {
	if u.t != nil {
		if err := u.t.CloseWrite(); err != nil {
			return err
		}
	}
	return u.TCPConn.CloseWrite()
}

// monoEpoch is the origin of mono times.
var monoEpoch = time.Now()

// mono is a time on the monotonic clock, in nanoseconds since monoEpoch:
// 8 bytes where a time.Time takes 24, for the times of a connection that
// are only compared or subtracted, never shown (an idle connection's size
// counts). Its wall reading would drift with a clock step since the
// process began, so a time that is logged stays a time.Time.
type mono int64

// monoOf is t (read from time.Now, so with a monotonic reading) as a mono.
func monoOf(t time.Time) mono { return mono(t.Sub(monoEpoch)) }

// time is m as a time.Time with a monotonic reading.
func (m mono) time() time.Time { return monoEpoch.Add(time.Duration(m)) }
