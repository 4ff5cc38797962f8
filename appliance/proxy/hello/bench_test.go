package hello

import (
	"crypto/tls"
	"testing"
)

func BenchmarkParse(b *testing.B) {
	for _, bb := range []struct {
		name string
		in   []byte
	}{
		{"go13", goHello(b, &tls.Config{ServerName: "bench.example.com", NextProtos: []string{"h2", "http/1.1"}})},
		{"go12", goHello(b, &tls.Config{ServerName: "bench.example.com", MaxVersion: tls.VersionTLS12})},
		{"chrome", chromeHello()},
		{"chrome/records-of-512", refragment(b, chromeHello(), 512)},
		{"40-extensions", helloRecord(append(manyExts(40), sniExt("many.example"))...)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bb.in)))
			for b.Loop() {
				if _, err := Parse(bb.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
