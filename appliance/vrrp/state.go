package vrrp

import "fmt"

// UnmarshalText reads a state's name, so status JSON decodes back (halbctl).
func (s *State) UnmarshalText(b []byte) error {
	for _, st := range []State{StateInit, StateBackup, StateMaster, StateFault} {
		if st.String() == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("vrrp: unknown state %q", b)
}
