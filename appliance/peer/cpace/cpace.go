// Package cpace implements the CPace balanced PAKE (draft-irtf-cfrg-cpace-21,
// an IRTF CFRG Internet-Draft, not an RFC) for its one ciphersuite
// CPACE-RISTR255-SHA512: the group ristretto255 (RFC 9496, via
// github.com/gtank/ristretto255) and the hash SHA-512.
//
// Two parties that share a low-entropy password each send one message (a
// 32-byte ristretto255 element) and derive the same 64-byte intermediate
// session key (ISK) if and only if they used the same password, channel
// identifier, session id and saw the same messages and associated data. A
// captured exchange gives no way to test password guesses offline; an active
// attacker gets one guess per exchange.
//
// The package does not define a wire format: Start returns the encoded share
// and the application sends it together with its associated data (AD) to the
// peer, which passes both to Finish. The ISK is not authenticated by itself;
// the caller confirms it (for example with a MAC over data both sides must
// agree on) before trusting anything it protects.
//
// Everything here is checked against the draft's Appendix B.3 vectors in
// cpace_test.go (go test ./appliance/peer/cpace).
package cpace

import (
	"crypto/hmac"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/gtank/ristretto255"
)

// Suite names a CPace ciphersuite as the draft's Section 5 does.
type Suite string

// RistrettoSHA512 is the only suite implemented: G_Ristretto255 with SHA-512.
const RistrettoSHA512 Suite = "CPACE-RISTR255-SHA512"

const (
	// dsi is G_Ristretto255.DSI (Section 8.3).
	dsi = "CPaceRistretto255"
	// hashBlockBytes is SHA-512's input block size, H.s_in_bytes.
	hashBlockBytes = 128
	// ElementSize is the length of a message: one encoded ristretto255 element.
	ElementSize = 32
	// ISKSize is the length of the intermediate session key (SHA-512).
	ISKSize = sha512.Size
)

// Role says which transcript a party builds (Section 6.3 of the draft).
type Role uint8

const (
	// Initiator is party A of the initiator-responder setting: its share
	// and AD come first in the transcript (transcript_ir).
	Initiator Role = iota + 1
	// Responder is party B of the initiator-responder setting.
	Responder
	// Symmetric is either party when neither has a fixed role; the
	// transcript orders both messages (transcript_oc).
	Symmetric
)

func (r Role) String() string {
	switch r {
	case Initiator:
		return "initiator"
	case Responder:
		return "responder"
	case Symmetric:
		return "symmetric"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

var (
	// ErrInvalidPeerShare is returned by Finish when the peer's message is
	// not a canonical encoding of a ristretto255 element or when the shared
	// point is the identity (the draft's abort on K = G.I).
	ErrInvalidPeerShare = errors.New("cpace: peer share is not a valid non-identity ristretto255 element")
	// ErrFinished is returned by Finish on a State that already finished or
	// failed: a secret scalar is used for one exchange only.
	ErrFinished = errors.New("cpace: state already used")
)

// State is one party's side of one exchange, between Start and Finish. It
// is not safe for concurrent use.
type State struct {
	role Role
	sid  []byte
	y    *ristretto255.Scalar // nil once Finish has run
	msg  []byte               // own encoded share
	ad   []byte               // own associated data
	tr   []byte               // transcript, set by a successful Finish
}

// Start begins an exchange in the given role. password is the PRS,
// channelID the CI (never sent; both sides must use the same bytes, and the
// draft recommends party identities in it), sid a public session identifier
// both sides know beforehand (may be empty), and ad this party's associated
// data, which the caller sends in clear beside the returned message. rand is
// the source of the secret scalar (crypto/rand.Reader in production).
func Start(role Role, password, channelID, sid, ad []byte, rand io.Reader) (*State, []byte, error) {
	if role < Initiator || role > Symmetric {
		return nil, nil, fmt.Errorf("cpace: start: unknown role %d", uint8(role))
	}
	y, err := sampleScalar(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("cpace: start as %s: %w", role, err)
	}
	g := calculateGenerator(password, channelID, sid)
	msg := ristretto255.NewElement().ScalarMult(y, g).Encode(nil)
	s := &State{
		role: role,
		sid:  append([]byte(nil), sid...),
		y:    y,
		msg:  msg,
		ad:   append([]byte(nil), ad...),
	}
	return s, append([]byte(nil), msg...), nil
}

// Finish takes the peer's message and associated data and returns the
// 64-byte ISK. It fails with ErrInvalidPeerShare when the message does not
// decode or yields the identity, and with ErrFinished on a second call. In
// either case the secret scalar is gone.
func (s *State) Finish(peerMsg, peerAD []byte) ([]byte, error) {
	if s.y == nil {
		return nil, ErrFinished
	}
	y := s.y
	s.y = nil
	k, ok := scalarMultVfy(y, peerMsg)
	y.Zero()
	if !ok {
		return nil, ErrInvalidPeerShare
	}
	switch s.role {
	case Initiator:
		s.tr = transcriptIR(s.msg, s.ad, peerMsg, peerAD)
	case Responder:
		s.tr = transcriptIR(peerMsg, peerAD, s.msg, s.ad)
	default:
		s.tr = transcriptOC(s.msg, s.ad, peerMsg, peerAD)
	}
	return isk(s.sid, k, s.tr), nil
}

// SessionIDOutput returns sid_output of the draft's Section 10.6,
// H.hash(b"CPaceSidOutput" || transcript): a public identifier both honest
// parties share, meant for runs that had no sid as input. It is nil until
// Finish has succeeded.
func (s *State) SessionIDOutput() []byte {
	if s.tr == nil {
		return nil
	}
	h := sha512.New()
	h.Write([]byte("CPaceSidOutput"))
	h.Write(s.tr)
	return h.Sum(nil)
}

// sampleScalar is G.sample_scalar() as Section 8.3 recommends it: 32 random
// bytes with the bits above group_size_bits (252) cleared, read as a
// little-endian integer. That is below the group order, so it is canonical.
// Zero, which has probability 2^-252, is drawn again instead of producing
// the identity as a share.
func sampleScalar(rand io.Reader) (*ristretto255.Scalar, error) {
	var b [32]byte
	for {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return nil, fmt.Errorf("read scalar: %w", err)
		}
		b[31] &= 0x0f
		y := ristretto255.NewScalar()
		if err := y.Decode(b[:]); err != nil {
			return nil, fmt.Errorf("decode scalar: %w", err)
		}
		clear(b[:])
		if y.Equal(ristretto255.NewScalar()) == 0 {
			return y, nil
		}
	}
}

// calculateGenerator is G_Ristretto255.calculate_generator (Section 8.3):
// hash generator_string to 64 bytes and apply ristretto255's element
// derivation (one-way map) to them.
func calculateGenerator(prs, ci, sid []byte) *ristretto255.Element {
	h := sha512.Sum512(generatorString([]byte(dsi), prs, ci, sid, hashBlockBytes))
	return ristretto255.NewElement().FromUniformBytes(h[:])
}

// scalarMultVfy is G.scalar_mult_vfy(y, X) followed by the protocol's abort
// check: it decodes X, computes y*X and reports false if X does not decode
// or the result is the identity G.I.
func scalarMultVfy(y *ristretto255.Scalar, x []byte) ([]byte, bool) {
	p := ristretto255.NewElement()
	if err := p.Decode(x); err != nil {
		return nil, false
	}
	k := ristretto255.NewElement().ScalarMult(y, p).Encode(nil)
	identity := ristretto255.NewElement().Encode(nil) // G.I: 32 zero bytes
	if subtle.ConstantTimeCompare(k, identity) == 1 {
		return nil, false
	}
	return k, true
}

// isk is ISK = H.hash(lv_cat(G.DSI || b"_ISK", sid, K) || transcript).
func isk(sid, k, transcript []byte) []byte {
	h := sha512.New()
	h.Write(lvCat([]byte(dsi+"_ISK"), sid, k))
	h.Write(transcript)
	return h.Sum(nil)
}

// prependLen returns the LEB128 encoding of len(data) followed by data
// (Appendix A.1.1).
func prependLen(data []byte) []byte {
	n := len(data)
	out := make([]byte, 0, n+5)
	for {
		if n < 128 {
			out = append(out, byte(n))
		} else {
			out = append(out, byte(n&0x7f)|0x80)
		}
		n >>= 7
		if n == 0 {
			break
		}
	}
	return append(out, data...)
}

// lvCat concatenates prependLen of each argument (Appendix A.1.3).
func lvCat(args ...[]byte) []byte {
	var out []byte
	for _, a := range args {
		out = append(out, prependLen(a)...)
	}
	return out
}

// generatorString is lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid) with
// len_zpad = max(0, s_in_bytes - 1 - len(prepend_len(PRS)) -
// len(prepend_len(DSI))) (Section 8.1, Appendix A.2), so that DSI, PRS and
// the padding fill the hash's first input block.
func generatorString(dsi, prs, ci, sid []byte, sInBytes int) []byte {
	zpad := max(0, sInBytes-1-len(prependLen(prs))-len(prependLen(dsi)))
	return lvCat(dsi, prs, make([]byte, zpad), ci, sid)
}

// lexicographicallyLarger reports whether a > b in the draft's ordering
// (Appendix A.3.1): bytewise, then the longer string is larger.
func lexicographicallyLarger(a, b []byte) bool {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return a[i] > b[i]
		}
	}
	return len(a) > len(b)
}

// oCat is o_cat (Appendix A.3.2): b"oc" then the larger string, then the
// other.
func oCat(a, b []byte) []byte {
	if !lexicographicallyLarger(a, b) {
		a, b = b, a
	}
	out := append([]byte("oc"), a...)
	return append(out, b...)
}

// transcriptIR is lv_cat(Ya, ADa) || lv_cat(Yb, ADb) (Appendix A.3.4).
func transcriptIR(ya, ada, yb, adb []byte) []byte {
	return append(lvCat(ya, ada), lvCat(yb, adb)...)
}

// transcriptOC is o_cat(lv_cat(Ya, ADa), lv_cat(Yb, ADb)) (Appendix A.3.6).
func transcriptOC(ya, ada, yb, adb []byte) []byte {
	return oCat(lvCat(ya, ada), lvCat(yb, adb))
}

// ConfirmationTag is one party's explicit key confirmation as the draft's
// Section 10.4 describes it, instantiated with HMAC-SHA512: the MAC, keyed
// with mac_key = H.hash(b"CPaceMac" || sid || ISK), of lv_cat(Y, AD) for
// that party's message Y and associated data AD. Each side sends the tag of
// its own message and checks the peer's tag (with hmac.Equal) against
// ConfirmationTag of the peer's message before it trusts the ISK.
func ConfirmationTag(isk, sid, y, ad []byte) []byte {
	h := sha512.New()
	h.Write([]byte("CPaceMac"))
	h.Write(sid)
	h.Write(isk)
	mac := hmac.New(sha512.New, h.Sum(nil))
	mac.Write(lvCat(y, ad))
	return mac.Sum(nil)
}
