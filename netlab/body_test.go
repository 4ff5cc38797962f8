package netlab

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The big-body checks pass through a faithful relay and fail through one
// that changes a byte, in each direction and framing.
func TestBodyChecksCatchACorruptedByte(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bs := NewBodyServer()
	go bs.Serve(ln)
	defer bs.Close()
	target, _ := url.Parse("http://" + ln.Addr().String())
	relay := func(corrupt bool) string {
		rp := httputil.NewSingleHostReverseProxy(target)
		if corrupt {
			rp.Director = func(r *http.Request) {
				r.URL.Scheme, r.URL.Host = target.Scheme, target.Host
				if r.Body != nil {
					r.Body = io.NopCloser(&flipOne{r: r.Body, at: 1000})
				}
			}
			rp.ModifyResponse = func(resp *http.Response) error {
				resp.Body = io.NopCloser(&flipOne{r: resp.Body, at: 1000})
				return nil
			}
		}
		rl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: rp}
		go srv.Serve(rl)
		t.Cleanup(func() { srv.Close() })
		return "http://" + rl.Addr().String() + "/"
	}
	good, bad := relay(false), relay(true)
	hc := &http.Client{Timeout: 10 * time.Second}
	const size = 1 << 20
	for i, chunked := range []bool{false, true} {
		seed := uint64(10 + 2*i)
		if err := bodyUp(hc, good+"up", seed, size, chunked); err != nil {
			t.Errorf("up chunked=%v through a faithful relay: %v", chunked, err)
		}
		if err := bodyDown(hc, bs, good, seed+1, size, chunked); err != nil {
			t.Errorf("down chunked=%v through a faithful relay: %v", chunked, err)
		}
		if err := bodyUp(hc, bad+"up", seed+100, size, chunked); err == nil || !strings.Contains(err.Error(), "SHA-256") {
			t.Errorf("up chunked=%v through a corrupting relay: %v, want a checksum mismatch", chunked, err)
		}
		if err := bodyDown(hc, bs, bad, seed+101, size, chunked); err == nil || !strings.Contains(err.Error(), "SHA-256") {
			t.Errorf("down chunked=%v through a corrupting relay: %v, want a checksum mismatch", chunked, err)
		}
	}
	// The stream is the same for a seed and differs between seeds.
	a, _ := io.ReadAll(NewStream(7, 4096, nil))
	b, _ := io.ReadAll(NewStream(7, 4096, nil))
	c, _ := io.ReadAll(NewStream(8, 4096, nil))
	if !bytes.Equal(a, b) || bytes.Equal(a, c) || len(a) != 4096 {
		t.Errorf("streams: same seed equal %v, other seed equal %v, length %d", bytes.Equal(a, b), bytes.Equal(a, c), len(a))
	}
}

// flipOne inverts the byte at offset at of r.
type flipOne struct {
	r   io.Reader
	at  int64
	off int64
}

func (f *flipOne) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.off && f.at < f.off+int64(n) {
		p[f.at-f.off] ^= 0xff
	}
	f.off += int64(n)
	return n, err
}
