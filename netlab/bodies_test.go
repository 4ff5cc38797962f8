package netlab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// bodyAddr is where the scenario's BodyServer listens (on be1).
const bodyAddr = "10.0.0.11:9000"

// TestBigBodies: 512 MiB up through the proxy with a Content-Length and
// chunked, and 512 MiB down (make soak: also chunked down), one transfer at
// a time on a new connection. Asserted: the SHA-256 and the length of
// every body are the same at both ends, and halbd's peak resident memory
// (VmHWM) stays under 64 MiB, an eighth of one body. Reported: each
// proxy's peak RSS and the throughput of each transfer.
func TestBigBodies(t *testing.T) {
	const size = 512 << 20
	const bound = 64 << 20
	cfg := SoloConfig{
		Services: []SoloService{{Name: "bulk", Port: 80, Backend: "bulk"}},
		Backends: []SoloBackend{{Name: "bulk", Servers: []SoloServer{{Name: "bulk", Addr: bodyAddr}}}},
	}
	var bs *BodyServer
	setup := func(s *Solo) error {
		ln, err := s.BEHosts[0].Listen("tcp", bodyAddr)
		if err != nil {
			return err
		}
		bs = NewBodyServer()
		go bs.Serve(ln)
		s.OnClose(bs)
		return nil
	}
	soloScenarioWith(t, "big-bodies-512MiB", 0, cfg, setup, func(t *testing.T, s *Solo, row *Row) {
		rssBefore := s.ProxyRSS()
		tr := &http.Transport{DialContext: s.Client.Dial, DisableKeepAlives: true, DisableCompression: true}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
		transfers := []struct {
			name     string
			up       bool
			chunked  bool
			longOnly bool
		}{
			{"up, Content-Length", true, false, false},
			{"up, chunked", true, true, false},
			{"down, Content-Length", false, false, false},
			{"down, chunked", false, true, true},
		}
		for i, x := range transfers {
			if x.longOnly && !soakLong() {
				continue
			}
			row.Sent++
			start := time.Now()
			err := func() error {
				if x.up {
					return bodyUp(hc, s.URL(80)+"up", uint64(i+1), size, x.chunked)
				}
				return bodyDown(hc, bs, s.URL(80), uint64(i+1), size, x.chunked)
			}()
			took := time.Since(start)
			if err != nil {
				row.Failed++
				t.Errorf("%s: %v", x.name, err)
				continue
			}
			row.Notef("%s: checksums equal, %.0f MiB/s", x.name, float64(size)/(1<<20)/took.Seconds())
		}
		peak := s.ProxyPeakRSS()
		row.Notef("proxy RSS %s before; peak (VmHWM of %s) %s", mib(rssBefore), map[Flavor]string{FlavorHalb: "halbd", FlavorReference: "HAProxy's worker"}[s.Flavor], mib(peak))
		if peak > bound {
			msg := fmt.Sprintf("the proxy's peak RSS %s exceeds %s for %s bodies", mib(peak), mib(bound), mib(size))
			if s.Flavor == FlavorHalb {
				t.Error(msg)
			} else {
				row.Notef("%s", msg)
			}
		}
	})
}

// bodyUp PUTs size bytes of the stream of seed and checks that the server
// got them all, with the same SHA-256.
func bodyUp(hc *http.Client, url string, seed uint64, size int64, chunked bool) error {
	h := sha256.New()
	req, err := http.NewRequest(http.MethodPut, url, NewStream(seed, size, h))
	if err != nil {
		return err
	}
	req.ContentLength = size
	if chunked {
		req.ContentLength = -1 // net/http sends it chunked
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	if got := resp.Header.Get("X-Bytes"); got != strconv.FormatInt(size, 10) {
		return fmt.Errorf("the server got %s bytes, want %d", got, size)
	}
	if got, want := resp.Header.Get("X-Sha256"), hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("the server's SHA-256 %s differs from the client's %s", got, want)
	}
	return nil
}

// bodyDown GETs size bytes of the stream of seed and checks that the
// client got them all, with the SHA-256 of what the server sent.
func bodyDown(hc *http.Client, bs *BodyServer, base string, seed uint64, size int64, chunked bool) error {
	url := fmt.Sprintf("%sdown?n=%d&seed=%d", base, size, seed)
	if chunked {
		url += "&chunked=1"
	}
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	if chunked != (resp.ContentLength < 0) {
		return fmt.Errorf("Content-Length %d, want chunked=%v", resp.ContentLength, chunked)
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", n, err)
	}
	if n != size {
		return fmt.Errorf("got %d bytes, want %d", n, size)
	}
	var sent string
	if !WaitFor(5*time.Second, func() (ok bool) { sent, ok = bs.Sent(seed); return ok }) {
		return fmt.Errorf("the server recorded no checksum for seed %d", seed)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sent {
		return fmt.Errorf("the client's SHA-256 %s differs from the server's %s", got, sent)
	}
	return nil
}
