package timesync

import (
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Adjuster corrects the system clock. The default is the kernel's
// (adjtimex); tests give a recorder. It is called only with
// time.set_clock: true.
type Adjuster interface {
	// Step sets the clock forward (offset > 0) or back by offset at once.
	Step(offset time.Duration) error
	// Slew makes the kernel run the clock slightly faster or slower until
	// offset is absorbed, replacing any slew still in progress.
	Slew(offset time.Duration) error
}

// adjtimex is the system call the kernel adjuster makes; tests replace it
// to see the requests without touching the host's clock.
var adjtimex = unix.Adjtimex

// kernelCalls counts the kernel adjuster's calls, so that a test can
// prove that a run with set_clock off never reached it.
var kernelCalls atomic.Int64

// kernelAdjuster corrects the clock with adjtimex(2).
//
// A step is ADJ_SETOFFSET|ADJ_NANO: the kernel adds the offset to the clock
// atomically (no read-modify-write race with settimeofday). A slew is
// ADJ_OFFSET_SINGLESHOT, the call behind adjtime(3) that ntpd makes when
// the kernel discipline is off (ntpd -x, ntpdate -B): the kernel slews at
// 500 ppm (0.5 ms per second) until the offset is absorbed, and a new call
// replaces what is left of the old one. The kernel PLL (ADJ_OFFSET with
// STA_PLL, systemd-timesyncd's choice) also changes the frequency from
// successive offsets; a client that polls every 64..1024 s and wants
// each correction to mean exactly "remove this offset" is better served by
// the one-shot slew.
type kernelAdjuster struct{}

func (kernelAdjuster) Step(offset time.Duration) error {
	kernelCalls.Add(1)
	// A slew still running would add its remainder after the step.
	cancel := unix.Timex{Modes: unix.ADJ_OFFSET_SINGLESHOT}
	if _, err := adjtimex(&cancel); err != nil {
		return fmt.Errorf("adjtimex: cancel the slew before a step: %w", err)
	}
	tx := unix.Timex{Modes: unix.ADJ_SETOFFSET | unix.ADJ_NANO, Time: stepTime(offset)}
	if _, err := adjtimex(&tx); err != nil {
		return fmt.Errorf("adjtimex: step the clock by %v: %w", offset, err)
	}
	return nil
}

func (kernelAdjuster) Slew(offset time.Duration) error {
	kernelCalls.Add(1)
	tx := unix.Timex{Modes: unix.ADJ_OFFSET_SINGLESHOT, Offset: offset.Microseconds()}
	if _, err := adjtimex(&tx); err != nil {
		return fmt.Errorf("adjtimex: slew the clock by %v: %w", offset, err)
	}
	return nil
}

// stepTime is offset as ADJ_SETOFFSET|ADJ_NANO wants it: whole seconds
// (negative for a step back) and nanoseconds in [0, 1e9) in the usec field.
func stepTime(offset time.Duration) unix.Timeval {
	sec, nsec := int64(offset/time.Second), int64(offset%time.Second)
	if nsec < 0 {
		sec--
		nsec += int64(time.Second)
	}
	return unix.Timeval{Sec: sec, Usec: nsec}
}
