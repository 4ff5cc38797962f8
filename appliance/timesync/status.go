// Package timesync measures the node's clock against NTP servers (SNTP
// exchanges with github.com/beevik/ntp), combines several servers, and,
// where the config allows, steps or slews the system clock.
package timesync

import "time"

// Status is the clock as halbd sees it: the contract between timesync, the
// daemon's status API, halbctl and the console.
type Status struct {
	// Synchronized: a server (or a combination) was chosen recently and its
	// offset is within time.max_offset.
	Synchronized bool `json:"synchronized"`
	// Offset is the chosen offset (server time minus local time).
	Offset time.Duration `json:"offset_ns"`
	// Server is the chosen server (the one whose sample was used).
	Server   string    `json:"server,omitempty"`
	LastSync time.Time `json:"last_sync,omitzero"`
	// SetClock: halbd corrects the clock (time.set_clock); Steps and
	// Slews count corrections since start.
	SetClock bool `json:"set_clock"`
	Steps    int  `json:"steps"`
	Slews    int  `json:"slews"`
	// Alarm is empty, or why the clock is not trustworthy ("offset 3.1s
	// beyond max_offset 500ms", "no server answers").
	Alarm   string         `json:"alarm,omitempty"`
	Servers []ServerStatus `json:"servers,omitempty"`
}

// ServerStatus is one server's latest figures.
type ServerStatus struct {
	// Name is as configured (or from DHCP); Address what it resolved to.
	Name    string `json:"name"`
	Address string `json:"address,omitempty"`
	// Source is "config" or "dhcp".
	Source    string        `json:"source"`
	Reachable bool          `json:"reachable"`
	Offset    time.Duration `json:"offset_ns"`
	Delay     time.Duration `json:"delay_ns"`
	Jitter    time.Duration `json:"jitter_ns"`
	Stratum   int           `json:"stratum"`
	LastPoll  time.Time     `json:"last_poll,omitzero"`
	Poll      time.Duration `json:"poll_ns"`
	// Falseticker: its offset disagrees with the majority and it was
	// dropped from the choice.
	Falseticker bool   `json:"falseticker,omitempty"`
	Chosen      bool   `json:"chosen,omitempty"`
	Error       string `json:"error,omitempty"`
}
