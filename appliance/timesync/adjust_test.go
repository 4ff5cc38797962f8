package timesync

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestKernelAdjusterRequests checks the adjtimex requests without making
// them: the system call is replaced for the test.
func TestKernelAdjusterRequests(t *testing.T) {
	var got []unix.Timex
	orig := adjtimex
	adjtimex = func(tx *unix.Timex) (int, error) { got = append(got, *tx); return 0, nil }
	t.Cleanup(func() { adjtimex = orig })
	before := kernelCalls.Load()

	var k kernelAdjuster
	if err := k.Step(-1500 * ms); err != nil {
		t.Fatal(err)
	}
	if err := k.Slew(50 * ms); err != nil {
		t.Fatal(err)
	}
	if err := k.Slew(-250 * time.Microsecond); err != nil {
		t.Fatal(err)
	}
	want := []unix.Timex{
		{Modes: unix.ADJ_OFFSET_SINGLESHOT},
		{Modes: unix.ADJ_SETOFFSET | unix.ADJ_NANO, Time: unix.Timeval{Sec: -2, Usec: 500_000_000}},
		{Modes: unix.ADJ_OFFSET_SINGLESHOT, Offset: 50_000},
		{Modes: unix.ADJ_OFFSET_SINGLESHOT, Offset: -250},
	}
	if len(got) != len(want) {
		t.Fatalf("adjtimex calls %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("adjtimex call %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if n := kernelCalls.Load() - before; n != 3 {
		t.Errorf("kernelCalls counted %d, want 3", n)
	}
}

func TestStepTime(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want unix.Timeval
	}{
		{3 * time.Second, unix.Timeval{Sec: 3}},
		{1500 * ms, unix.Timeval{Sec: 1, Usec: 500_000_000}},
		{-1, unix.Timeval{Sec: -1, Usec: 999_999_999}},
		{-3 * time.Second, unix.Timeval{Sec: -3}},
	} {
		if got := stepTime(tc.d); got != tc.want {
			t.Errorf("stepTime(%v) = %+v, want %+v", tc.d, got, tc.want)
		}
	}
}
