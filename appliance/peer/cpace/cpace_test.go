package cpace

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/gtank/ristretto255"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in vector %q: %v", s, err)
	}
	return b
}

func scalar(t testing.TB, s string) *ristretto255.Scalar {
	t.Helper()
	y := ristretto255.NewScalar()
	if err := y.Decode(unhex(t, s)); err != nil {
		t.Fatalf("scalar %s: %v", s, err)
	}
	return y
}

func eq(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if h := hex.EncodeToString(got); h != want {
		t.Errorf("%s:\n got %s\nwant %s", what, h, want)
	}
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// Appendix A.1.2, A.1.4, A.3.3, A.3.5 and A.3.7.
func TestStringUtilities(t *testing.T) {
	eq(t, "prepend_len(b\"\")", prependLen(nil), "00")
	eq(t, "prepend_len(b\"1234\")", prependLen([]byte("1234")), "0431323334")
	eq(t, "prepend_len(bytes(range(127)))", prependLen(seq(127)), vecPrependLen127)
	eq(t, "prepend_len(bytes(range(128)))", prependLen(seq(128)), vecPrependLen128)
	// Not in the draft: a three-byte LEB128 length (2^14 = 0x80 0x80 0x01).
	eq(t, "prepend_len length prefix of 16384 bytes", prependLen(make([]byte, 1<<14))[:3], "808001")

	eq(t, "lv_cat(b\"1234\",b\"5\",b\"\",b\"678\")",
		lvCat([]byte("1234"), []byte("5"), nil, []byte("678")), "043132333401350003363738")

	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"\x00", "\x00\x00", false},
		{"\x01", "\x00\x00", true},
		{"\x00\x00", "\x00", true},
		{"\x00\x00", "\x01", false},
		{"\x00\x01", "\x01", false},
		{"ABCD", "BCD", false},
	} {
		if got := lexicographicallyLarger([]byte(c.a), []byte(c.b)); got != c.want {
			t.Errorf("lexiographically_larger(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	eq(t, "o_cat(b\"ABCD\",b\"BCD\")", oCat([]byte("ABCD"), []byte("BCD")), "6f6342434441424344")
	eq(t, "o_cat(b\"BCD\",b\"ABCDE\")", oCat([]byte("BCD"), []byte("ABCDE")), "6f634243444142434445")

	pa, pb := []byte("PartyA"), []byte("PartyB")
	eq(t, "transcript_ir(123,PartyA,234,PartyB)",
		transcriptIR([]byte("123"), pa, []byte("234"), pb), "03313233065061727479410332333406506172747942")
	eq(t, "transcript_ir(3456,PartyA,2345,PartyB)",
		transcriptIR([]byte("3456"), pa, []byte("2345"), pb), "043334353606506172747941043233343506506172747942")
	eq(t, "transcript_oc(123,PartyA,234,PartyB)",
		transcriptOC([]byte("123"), pa, []byte("234"), pb), "6f6303323334065061727479420331323306506172747941")
	eq(t, "transcript_oc(3456,PartyA,2345,PartyB)",
		transcriptOC([]byte("3456"), pa, []byte("2345"), pb), "6f63043334353606506172747941043233343506506172747942")
}

// Appendix B.3.1.
func TestCalculateGeneratorB31(t *testing.T) {
	prs, ci, sid := []byte(vecPRS), unhex(t, vecCI), unhex(t, vecSID)
	if got := string(ci); got != "\x0bA_initiator\x0bB_responder" {
		t.Fatalf("CI decodes to %q", got)
	}
	gs := generatorString([]byte(dsi), prs, ci, sid, hashBlockBytes)
	eq(t, "generator_string", gs, vecGeneratorString)
	if zpad := int(gs[1+len(dsi)+1+len(prs)]); zpad != 100 {
		t.Errorf("ZPAD length %d, want 100", zpad)
	}
	h := sha512.Sum512(gs)
	eq(t, "hash result", h[:], vecGeneratorHash)
	eq(t, "encoded generator g", calculateGenerator(prs, ci, sid).Encode(nil), vecG)
}

// vectorRun plays the B.3 exchange through the public API, with the
// draft's scalars as the random source. Start clears only the bits above
// 252, which are already clear in ya and yb, so it draws exactly them.
type vectorRun struct {
	prs, ci, sid, ya, yb, ada, adb []byte
}

func newVectorRun(t testing.TB) vectorRun {
	return vectorRun{
		prs: []byte(vecPRS), ci: unhex(t, vecCI), sid: unhex(t, vecSID),
		ya: unhex(t, vecYa), yb: unhex(t, vecYb),
		ada: []byte(vecADa), adb: []byte(vecADb),
	}
}

type runResult struct {
	ya, yb         []byte // messages
	iskA, iskB     []byte
	sidOutA, sidOB []byte
}

func (v vectorRun) run(t testing.TB, ra, rb Role) (runResult, error) {
	t.Helper()
	a, ya, err := Start(ra, v.prs, v.ci, v.sid, v.ada, bytes.NewReader(v.ya))
	if err != nil {
		t.Fatalf("Start A: %v", err)
	}
	b, yb, err := Start(rb, v.prs, v.ci, v.sid, v.adb, bytes.NewReader(v.yb))
	if err != nil {
		t.Fatalf("Start B: %v", err)
	}
	var r runResult
	r.ya, r.yb = ya, yb
	if r.iskB, err = b.Finish(ya, v.ada); err != nil {
		return r, err
	}
	if r.iskA, err = a.Finish(yb, v.adb); err != nil {
		return r, err
	}
	r.sidOutA, r.sidOB = a.SessionIDOutput(), b.SessionIDOutput()
	return r, nil
}

// Appendix B.3.2 to B.3.7, through Start and Finish for both settings,
// then each intermediate value.
func TestExchangeB32toB37(t *testing.T) {
	v := newVectorRun(t)
	ya, yb := scalar(t, vecYa), scalar(t, vecYb)
	kA, okA := scalarMultVfy(ya, unhex(t, vecYbPoint))
	kB, okB := scalarMultVfy(yb, unhex(t, vecYaPoint))
	if !okA || !okB {
		t.Fatalf("scalar_mult_vfy rejected a valid point: ya,Yb %v; yb,Ya %v", okA, okB)
	}
	eq(t, "B.3.4 scalar_mult_vfy(ya,Yb)", kA, vecK)
	eq(t, "B.3.4 scalar_mult_vfy(yb,Ya)", kB, vecK)
	eq(t, "B.3.5 G.DSI_ISK", []byte(dsi+"_ISK"), vecDSIISK)

	for _, c := range []struct {
		name                                string
		ra, rb                              Role
		transcript                          func(ya, ada, yb, adb []byte) []byte
		wantTr, wantInput, wantISK, wantSid string
	}{
		{"B.3.5 initiator/responder", Initiator, Responder, transcriptIR,
			vecTranscriptIR, vecISKInputIR, vecISKIR, vecSidOutputIR},
		{"B.3.6 parallel", Symmetric, Symmetric, transcriptOC,
			vecTranscriptOC, vecISKInputOC, vecISKOC, vecSidOutputOC},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := v.run(t, c.ra, c.rb)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "B.3.2 Ya", r.ya, vecYaPoint)
			eq(t, "B.3.3 Yb", r.yb, vecYbPoint)
			eq(t, "ISK (A)", r.iskA, c.wantISK)
			eq(t, "ISK (B)", r.iskB, c.wantISK)
			eq(t, "B.3.7 sid_output (A)", r.sidOutA, c.wantSid)
			eq(t, "B.3.7 sid_output (B)", r.sidOB, c.wantSid)

			tr := c.transcript(unhex(t, vecYaPoint), v.ada, unhex(t, vecYbPoint), v.adb)
			eq(t, "transcript", tr, c.wantTr)
			eq(t, "lv_cat(DSI,sid,K)||transcript",
				append(lvCat([]byte(dsi+"_ISK"), v.sid, kA), tr...), c.wantInput)
			eq(t, "ISK from K and transcript", isk(v.sid, kA, tr), c.wantISK)
		})
	}
}

// Appendix B.3.10.
func TestScalarMultB310(t *testing.T) {
	s := scalar(t, vecS)
	x := ristretto255.NewElement()
	if err := x.Decode(unhex(t, vecX)); err != nil {
		t.Fatalf("decode X: %v", err)
	}
	eq(t, "G.scalar_mult(s,decode(X))", ristretto255.NewElement().ScalarMult(s, x).Encode(nil), vecSX)
	k, ok := scalarMultVfy(s, unhex(t, vecX))
	if !ok {
		t.Fatal("scalar_mult_vfy(s,X) rejected a valid point")
	}
	eq(t, "G.scalar_mult_vfy(s,X)", k, vecSX)
}

// Appendix B.3.11: both invalid inputs give G.I, and a protocol run that
// receives them aborts (Section 9).
func TestInvalidInputsB311(t *testing.T) {
	s := scalar(t, vecS)
	v := newVectorRun(t)
	for _, c := range []struct{ name, y string }{
		{"Y_i1 (not a valid encoding)", vecYi1},
		{"Y_i2 (G.I, the identity)", vecYi2},
	} {
		t.Run(c.name, func(t *testing.T) {
			if k, ok := scalarMultVfy(s, unhex(t, c.y)); ok {
				t.Fatalf("scalar_mult_vfy(s,%s) = %x, want G.I", c.y, k)
			}
			for _, role := range []Role{Initiator, Responder, Symmetric} {
				st, _, err := Start(role, v.prs, v.ci, v.sid, v.ada, bytes.NewReader(v.ya))
				if err != nil {
					t.Fatal(err)
				}
				isk, err := st.Finish(unhex(t, c.y), v.adb)
				if !errors.Is(err, ErrInvalidPeerShare) || isk != nil {
					t.Errorf("%s: Finish = %x, %v; want ErrInvalidPeerShare", role, isk, err)
				}
				if _, err := st.Finish(unhex(t, vecYbPoint), v.adb); !errors.Is(err, ErrFinished) {
					t.Errorf("%s: Finish after abort: %v, want ErrFinished", role, err)
				}
			}
		})
	}
}

// Not from the draft: further encodings Finish must refuse (RFC 9496
// decoding: 32 bytes, a canonical field element, non-negative).
func TestFinishRejectsMalformed(t *testing.T) {
	v := newVectorRun(t)
	yb := unhex(t, vecYbPoint)
	p := unhex(t, "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f") // 2^255-19
	pPlus2 := append([]byte(nil), p...)
	pPlus2[0] += 2 // p+2, the non-canonical spelling of 2
	for _, c := range []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"31 bytes", yb[:31]},
		{"33 bytes", append(append([]byte(nil), yb...), 0)},
		{"field modulus p", p},
		{"p+2", pPlus2},
		{"all ones", bytes.Repeat([]byte{0xff}, 32)},
		{"valid share with the top bit set", append(append([]byte(nil), yb[:31]...), yb[31]|0x80)},
	} {
		st, _, err := Start(Initiator, v.prs, v.ci, v.sid, v.ada, bytes.NewReader(v.ya))
		if err != nil {
			t.Fatal(err)
		}
		if isk, err := st.Finish(c.msg, v.adb); !errors.Is(err, ErrInvalidPeerShare) {
			t.Errorf("%s: Finish = %x, %v; want ErrInvalidPeerShare", c.name, isk, err)
		}
	}
}

// The vector comparisons above must be able to fail: change one byte of
// any input and the ISK no longer matches B.3.5.
func TestVectorsDetectOneByteChange(t *testing.T) {
	want := unhex(t, vecISKIR)
	flip := func(b []byte) []byte {
		c := append([]byte(nil), b...)
		c[len(c)/2] ^= 0x01
		return c
	}
	for _, c := range []struct {
		name string
		mut  func(*vectorRun)
	}{
		{"PRS", func(v *vectorRun) { v.prs = flip(v.prs) }},
		{"CI", func(v *vectorRun) { v.ci = flip(v.ci) }},
		{"sid", func(v *vectorRun) { v.sid = flip(v.sid) }},
		{"ya", func(v *vectorRun) { v.ya = flip(v.ya) }},
		{"yb", func(v *vectorRun) { v.yb = flip(v.yb) }},
		{"ADa", func(v *vectorRun) { v.ada = flip(v.ada) }},
		{"ADb", func(v *vectorRun) { v.adb = flip(v.adb) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newVectorRun(t)
			c.mut(&v)
			r, err := v.run(t, Initiator, Responder)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(r.iskA, want) || bytes.Equal(r.iskB, want) {
				t.Errorf("ISK still equals the B.3.5 vector with %s changed", c.name)
			}
			if !bytes.Equal(r.iskA, r.iskB) {
				t.Errorf("both sides use the changed %s, yet their ISKs differ", c.name)
			}
		})
	}
	// Roles swapped: B's share first in the transcript is another transcript.
	r, err := newVectorRun(t).run(t, Responder, Initiator)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(r.iskA, want) {
		t.Error("ISK equals the vector with the roles swapped")
	}
}

type party struct {
	role               Role
	prs, ci, sid, ad   []byte
	tamperAD, tamperMs bool
}

func exchange(t *testing.T, a, b party) (iskA, iskB []byte) {
	t.Helper()
	sa, ma, err := Start(a.role, a.prs, a.ci, a.sid, a.ad, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sb, mb, err := Start(b.role, b.prs, b.ci, b.sid, b.ad, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(ma) != ElementSize || len(mb) != ElementSize {
		t.Fatalf("message sizes %d, %d; want %d", len(ma), len(mb), ElementSize)
	}
	adA := a.ad
	if a.tamperAD { // a man in the middle changes A's AD on its way to B
		adA = append(append([]byte(nil), adA...), '!')
	}
	if iskB, err = sb.Finish(ma, adA); err != nil {
		t.Fatal(err)
	}
	if iskA, err = sa.Finish(mb, b.ad); err != nil {
		t.Fatal(err)
	}
	if len(iskA) != ISKSize || len(iskB) != ISKSize {
		t.Fatalf("ISK sizes %d, %d; want %d", len(iskA), len(iskB), ISKSize)
	}
	return iskA, iskB
}

func TestAgreement(t *testing.T) {
	honestA := party{role: Initiator, prs: []byte("K7QX-M3PD"), ci: []byte("lb1|lb2"), sid: []byte("session-1"), ad: []byte("A")}
	honestB := party{role: Responder, prs: []byte("K7QX-M3PD"), ci: []byte("lb1|lb2"), sid: []byte("session-1"), ad: []byte("B")}
	for _, c := range []struct {
		name  string
		mut   func(a, b *party)
		agree bool
	}{
		{"same inputs", func(a, b *party) {}, true},
		{"symmetric, same inputs", func(a, b *party) { a.role, b.role = Symmetric, Symmetric }, true},
		{"empty sid, CI and AD", func(a, b *party) { a.sid, b.sid, a.ci, b.ci, a.ad, b.ad = nil, nil, nil, nil, nil, nil }, true},
		{"different password", func(a, b *party) { b.prs = []byte("K7QX-M3PE") }, false},
		{"different sid", func(a, b *party) { b.sid = []byte("session-2") }, false},
		{"different channel ID", func(a, b *party) { b.ci = []byte("lb2|lb1") }, false},
		{"AD changed in transit", func(a, b *party) { a.tamperAD = true }, false},
		{"both claim initiator", func(a, b *party) { b.role = Initiator }, false},
		{"symmetric against initiator", func(a, b *party) { b.role = Symmetric }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := honestA, honestB
			c.mut(&a, &b)
			iskA, iskB := exchange(t, a, b)
			if got := bytes.Equal(iskA, iskB); got != c.agree {
				t.Errorf("ISKs equal = %v, want %v", got, c.agree)
			}
		})
	}
	// Two honest runs with the same inputs give fresh keys.
	a1, _ := exchange(t, honestA, honestB)
	a2, _ := exchange(t, honestA, honestB)
	if bytes.Equal(a1, a2) {
		t.Error("two runs produced the same ISK")
	}
}

func TestStartErrors(t *testing.T) {
	if _, _, err := Start(Initiator, []byte("pw"), nil, nil, nil, bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("Start with 31 random bytes succeeded")
	}
	if _, _, err := Start(Role(0), []byte("pw"), nil, nil, nil, rand.Reader); err == nil {
		t.Error("Start with role 0 succeeded")
	}
	if _, _, err := Start(Symmetric+1, []byte("pw"), nil, nil, nil, rand.Reader); err == nil {
		t.Error("Start with an unknown role succeeded")
	}
}

func TestSampleScalar(t *testing.T) {
	// All ones: the top four bits are cleared, giving 2^252 - 1.
	y, err := sampleScalar(bytes.NewReader(bytes.Repeat([]byte{0xff}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{0xff}, 32)
	want[31] = 0x0f
	if got := y.Encode(nil); !bytes.Equal(got, want) {
		t.Errorf("scalar from all-ones = %x, want %x", got, want)
	}
	// Zero (0xf0 in the top byte clears to zero too) is drawn again.
	zero := make([]byte, 32)
	zero[31] = 0xf0
	y, err = sampleScalar(bytes.NewReader(append(zero, unhex(t, vecYa)...)))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "scalar after a zero draw", y.Encode(nil), vecYa)
	if _, err := sampleScalar(bytes.NewReader(make([]byte, 32))); err == nil {
		t.Error("sampleScalar returned zero or succeeded on a reader of zeros only")
	}
}

// FuzzFinish feeds arbitrary peer messages to Finish: it never panics,
// accepts exactly the canonical encodings of non-identity elements, and
// then returns a 64-byte ISK.
func FuzzFinish(f *testing.F) {
	f.Add(unhex(f, vecYbPoint), []byte(vecADb))
	f.Add(unhex(f, vecYi1), []byte(nil))
	f.Add(unhex(f, vecYi2), []byte("x"))
	f.Add(bytes.Repeat([]byte{0xff}, 32), []byte(nil))
	f.Add(unhex(f, vecYbPoint)[:31], []byte(nil))
	f.Add(append(unhex(f, vecYbPoint), 0), []byte(nil))
	topBit := unhex(f, vecYbPoint)
	topBit[31] |= 0x80
	f.Add(topBit, []byte(nil))
	v := newVectorRun(f)
	identity := make([]byte, 32)
	f.Fuzz(func(t *testing.T, peerMsg, peerAD []byte) {
		st, _, err := Start(Initiator, v.prs, v.ci, v.sid, v.ada, bytes.NewReader(v.ya))
		if err != nil {
			t.Fatal(err)
		}
		isk, err := st.Finish(peerMsg, peerAD)
		e := ristretto255.NewElement()
		valid := e.Decode(peerMsg) == nil && bytes.Equal(e.Encode(nil), peerMsg) && !bytes.Equal(peerMsg, identity)
		switch {
		case valid && err != nil:
			t.Fatalf("Finish rejected the valid element %x: %v", peerMsg, err)
		case !valid && !errors.Is(err, ErrInvalidPeerShare):
			t.Fatalf("Finish(%x) = %x, %v; want ErrInvalidPeerShare", peerMsg, isk, err)
		case valid && len(isk) != ISKSize:
			t.Fatalf("ISK of %d bytes", len(isk))
		}
	})
}
