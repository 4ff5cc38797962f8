package proxy

import (
	"net"
	"time"
)

// deadlines caches a connection's read and write deadlines: setting one
// costs a runtime timer update, so a new one is set only when it differs
// from the one in force by more than a tolerance.
type deadlines struct{ r, w time.Time }

// read makes c's read deadline at, give or take tol.
func (d *deadlines) read(c *net.TCPConn, at time.Time, tol time.Duration) {
	if diff := at.Sub(d.r); diff > tol || diff < -tol {
		c.SetReadDeadline(at)
		d.r = at
	}
}

// write makes c's write deadline at, give or take tol.
func (d *deadlines) write(c *net.TCPConn, at time.Time, tol time.Duration) {
	if diff := at.Sub(d.w); diff > tol || diff < -tol {
		c.SetWriteDeadline(at)
		d.w = at
	}
}

// clear removes both deadlines.
func (d *deadlines) clear(c *net.TCPConn) {
	c.SetDeadline(time.Time{})
	*d = deadlines{}
}

// upstream is a server connection with its cached deadlines.
type upstream struct {
	*net.TCPConn
	dl deadlines
}
