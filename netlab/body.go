package netlab

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// BodyServer is an HTTP server for big bodies: PUT /up reads the request
// body and answers with its SHA-256 and length (X-Sha256, X-Bytes); GET
// /down?n=N&seed=S sends N bytes of the Stream of seed S with a
// Content-Length (or chunked with &chunked=1) and keeps the SHA-256 of what
// it wrote (Sent). Every other request gets 200 "ok".
type BodyServer struct {
	srv *http.Server

	mu   sync.Mutex
	sent map[uint64]string // seed → SHA-256 of the body written
}

// NewBodyServer returns a BodyServer; Serve it on a listener.
func NewBodyServer() *BodyServer {
	b := &BodyServer{sent: map[uint64]string{}}
	b.srv = &http.Server{Handler: b, ErrorLog: log.New(io.Discard, "", 0)}
	return b
}

// Serve answers on ln until Close.
func (b *BodyServer) Serve(ln net.Listener) error {
	if err := b.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops the server and cuts its connections.
func (b *BodyServer) Close() error { return b.srv.Close() }

// Sent returns the SHA-256 of the body written for seed, once written.
func (b *BodyServer) Sent(seed uint64) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.sent[seed]
	return s, ok
}

// ServeHTTP answers per the path.
func (b *BodyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/up":
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Sha256", hex.EncodeToString(h.Sum(nil)))
		w.Header().Set("X-Bytes", strconv.FormatInt(n, 10))
		io.WriteString(w, "ok\n")
	case "/down":
		q := r.URL.Query()
		n, err1 := strconv.ParseInt(q.Get("n"), 10, 64)
		seed, err2 := strconv.ParseUint(q.Get("seed"), 10, 64)
		if err1 != nil || err2 != nil || n < 0 {
			http.Error(w, "n and seed", http.StatusBadRequest)
			return
		}
		if q.Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		}
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(w, h), NewStream(seed, n, nil)); err != nil {
			return
		}
		b.mu.Lock()
		b.sent[seed] = hex.EncodeToString(h.Sum(nil))
		b.mu.Unlock()
	default:
		io.WriteString(w, "ok\n")
	}
}

// Stream is n pseudo-random bytes from a seed (ChaCha8), read in pieces of
// up to 64 KiB, optionally hashed as they are read.
type Stream struct {
	rng  *rand.ChaCha8
	left int64
	h    hash.Hash
}

// NewStream returns the stream of seed, n bytes long, written to h (when
// not nil) as it is read.
func NewStream(seed uint64, n int64, h hash.Hash) *Stream {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return &Stream{rng: rand.NewChaCha8(s), left: n, h: h}
}

// Read implements io.Reader.
func (s *Stream) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), s.left, 64<<10)]
	s.rng.Read(p)
	s.left -= int64(len(p))
	if s.h != nil {
		s.h.Write(p)
	}
	return len(p), nil
}
