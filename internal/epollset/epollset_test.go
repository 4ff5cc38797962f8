package epollset

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// eventfd returns a non-blocking eventfd in s, level-triggered, with data
// 7.
func eventfd(t *testing.T, s *Set) int {
	t.Helper()
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(efd) })
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: 7}
	if err := s.Ctl(unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		t.Fatal(err)
	}
	return efd
}

func poke(t *testing.T, efd int) {
	if _, err := unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Error(err)
	}
}

// TestWait: an event already there is returned at once (even past the
// deadline), one that comes while Wait waits wakes it, and a wait with
// nothing to report ends at its deadline with 0 events.
func TestWait(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	efd := eventfd(t, s)
	events := make([]unix.EpollEvent, 8)

	poke(t, efd)
	if n, err := s.Wait(events, time.Time{}); n != 1 || err != nil || events[0].Fd != 7 {
		t.Fatalf("pending event: %d events, %v, data %d", n, err, events[0].Fd)
	}
	// A deadline already past still reports what the set holds.
	if n, err := s.Wait(events, time.Now().Add(-time.Second)); n != 1 || err != nil {
		t.Fatalf("pending event, deadline past: %d events, %v", n, err)
	}
	var b [8]byte
	unix.Read(efd, b[:])
	if n, err := s.Wait(events, time.Now().Add(-time.Second)); n != 0 || err != nil {
		t.Fatalf("nothing pending, deadline past: %d events, %v", n, err)
	}

	start := time.Now()
	if n, err := s.Wait(events, start.Add(50*time.Millisecond)); n != 0 || err != nil {
		t.Fatalf("nothing to wait for: %d events, %v", n, err)
	}
	if el := time.Since(start); el < 50*time.Millisecond || el > 5*time.Second {
		t.Fatalf("a 50 ms wait took %v", el)
	}

	go func() {
		time.Sleep(30 * time.Millisecond)
		poke(t, efd)
	}()
	start = time.Now()
	if n, err := s.Wait(events, time.Time{}); n != 1 || err != nil {
		t.Fatalf("event during the wait: %d events, %v", n, err)
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Fatalf("returned after %v, before the event", el)
	}
	unix.Read(efd, b[:])

	// The edge of an event consumed elsewhere must not leave a later
	// wait blocked on events the set still holds: poke, drain the set
	// without Wait, poke again (no new edge for the poller while the
	// first is unread), Wait.
	poke(t, efd)
	time.Sleep(10 * time.Millisecond)
	if n, err := unix.EpollWait(s.FD(), events, 0); n != 1 || err != nil {
		t.Fatalf("direct wait: %d, %v", n, err)
	}
	poke(t, efd)
	done := make(chan int, 1)
	go func() { n, _ := s.Wait(events, time.Now().Add(5*time.Second)); done <- n }()
	select {
	case n := <-done:
		if n != 1 {
			t.Fatalf("%d events, want the pending one", n)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Wait blocked with an event in the set")
	}
}

// TestCloseEndsWait: closing the set ends a Wait under way with an error,
// and later Waits and Ctls fail.
func TestCloseEndsWait(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := s.Wait(make([]unix.EpollEvent, 4), time.Time{})
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Wait returned no error after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait still blocked after Close")
	}
	// A closed set is neither asked nor changed, whatever the deadline
	// (its descriptor may belong to something else by now).
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	if err := s.Ctl(unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN}); err == nil {
		t.Error("Ctl after Close: no error")
	}
	for _, dl := range []time.Time{{}, time.Now().Add(-time.Second), time.Now().Add(time.Second)} {
		if _, err := s.Wait(make([]unix.EpollEvent, 4), dl); err == nil {
			t.Errorf("Wait(%v) after Close: no error", dl)
		}
	}
}
