package peer

import (
	"crypto/rand"
	"fmt"
	"strings"
)

// A pairing code is 10 symbols of Crockford's base32 (digits and letters
// without I, L, O and U), shown as two groups of five: "K7QM4-XRT9C". That
// is 50 bits; with 5 tries an attacker's chance is 5 / 2^50. Typing is
// forgiving: case, spaces and dashes do not matter, and O, I and L are read
// as 0, 1 and 1.
const (
	codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	codeLen      = 10
)

// newCode draws a pairing code.
func newCode() (string, error) {
	var b [codeLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("pairing code: %w", err)
	}
	out := make([]byte, 0, codeLen+1)
	for i, x := range b {
		if i == codeLen/2 {
			out = append(out, '-')
		}
		out = append(out, codeAlphabet[x&31])
	}
	return string(out), nil
}

// normalizeCode is the code as the PAKE uses it: upper case, no
// separators, the look-alikes mapped; an error names a symbol that cannot
// be in a code.
func normalizeCode(s string) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch r {
		case ' ', '-', '\t':
			continue
		case 'O':
			r = '0'
		case 'I', 'L':
			r = '1'
		}
		if !strings.ContainsRune(codeAlphabet, r) {
			return "", fmt.Errorf("pairing code: %q cannot be in a code (letters and digits without U)", r)
		}
		b.WriteRune(r)
	}
	if b.Len() != codeLen {
		return "", fmt.Errorf("pairing code: want %d letters and digits, got %d", codeLen, b.Len())
	}
	return b.String(), nil
}
