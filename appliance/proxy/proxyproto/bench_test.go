package proxyproto

import "testing"

func BenchmarkParse(b *testing.B) {
	for _, bb := range []struct {
		name string
		in   []byte
	}{
		{"v1/TCP4", AppendV1(nil, v4Src, v4Dst)},
		{"v1/TCP6", AppendV1(nil, v6Src, v6Dst)},
		{"v2/TCP4", AppendV2(nil, v4Src, v4Dst)},
		{"v2/TCP6", AppendV2(nil, v6Src, v6Dst)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.in)))
			for b.Loop() {
				if _, _, err := Parse(bb.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendV1(b *testing.B) {
	buf := make([]byte, 0, MaxV1Len)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendV1(buf[:0], v6Src, v6Dst)
	}
}

func BenchmarkAppendV2(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendV2(buf[:0], v6Src, v6Dst)
	}
}
