// Package tui is halb's console (halb-console): a bubbletea program on tty1
// and ttyS0 that sets the box up and shows its live state. It talks only to
// halbd's control API (appliance/api). It arrives with the console issue.
package tui
