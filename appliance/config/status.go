package config

import (
	"fmt"
	"strconv"
	"strings"
)

// StatusCodes is the set of HTTP statuses an http(s) check accepts, written
// as HAProxy's `http-check expect status` and keepalived's status_code take
// them: one status ("200"), a range ("200-399") or a comma-separated list of
// both ("200,204,300-399"). Every status is within 100..599.
type StatusCodes []StatusRange

// StatusRange is Lo..Hi inclusive; Lo == Hi for a single status.
type StatusRange struct{ Lo, Hi int }

// Contains reports whether status is in the set.
func (s StatusCodes) Contains(status int) bool {
	for _, r := range s {
		if status >= r.Lo && status <= r.Hi {
			return true
		}
	}
	return false
}

func (s StatusCodes) String() string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(r.Lo))
		if r.Hi != r.Lo {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(r.Hi))
		}
	}
	return b.String()
}

// MarshalText writes the set as it is written in halb.yaml.
func (s StatusCodes) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses "200", "200-399" or "200,204,300-399".
func (s *StatusCodes) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	if text == "" {
		return fmt.Errorf("want a status, a range or a list (e.g. 200, 200-399, 200,204)")
	}
	var out StatusCodes
	for _, part := range strings.Split(text, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		r, err := parseStatusRange(strings.TrimSpace(lo), strings.TrimSpace(hi), isRange)
		if err != nil {
			return err
		}
		out = append(out, r)
	}
	*s = out
	return nil
}

func parseStatusRange(lo, hi string, isRange bool) (StatusRange, error) {
	status := func(t string) (int, error) {
		n, err := strconv.Atoi(t)
		if err != nil {
			return 0, fmt.Errorf("%q is not a status, a range or a list (e.g. 200, 200-399, 200,204)", t)
		}
		if n < 100 || n > 599 {
			return 0, fmt.Errorf("%d is out of range 100..599", n)
		}
		return n, nil
	}
	l, err := status(lo)
	if err != nil {
		return StatusRange{}, err
	}
	if !isRange {
		return StatusRange{l, l}, nil
	}
	h, err := status(hi)
	if err != nil {
		return StatusRange{}, err
	}
	if h < l {
		return StatusRange{}, fmt.Errorf("range %d-%d ends before it starts", l, h)
	}
	return StatusRange{l, h}, nil
}

// validate reports the first range outside 100..599 or reversed, for sets
// built in Go rather than parsed.
func (s StatusCodes) validate() error {
	if len(s) == 0 {
		return fmt.Errorf("want at least one status")
	}
	for _, r := range s {
		if r.Lo < 100 || r.Hi > 599 {
			return fmt.Errorf("%s is out of range 100..599", StatusCodes{r})
		}
		if r.Hi < r.Lo {
			return fmt.Errorf("range %d-%d ends before it starts", r.Lo, r.Hi)
		}
	}
	return nil
}
