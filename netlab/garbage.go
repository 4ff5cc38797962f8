package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// Outcomes counts how hostile connections ended: the first line of the
// proxy's reply, or why there was none.
type Outcomes map[string]int

// String lists the outcomes, most frequent first.
func (o Outcomes) String() string {
	keys := slices.Collect(maps.Keys(o))
	slices.SortFunc(keys, func(a, b string) int {
		if o[a] != o[b] {
			return o[b] - o[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d x %q", o[k], k))
	}
	return strings.Join(parts, ", ")
}

// Add counts the outcomes of more.
func (o Outcomes) Add(more Outcomes) {
	for k, v := range more {
		o[k] += v
	}
}

// Total is the number of connections counted.
func (o Outcomes) Total() int {
	n := 0
	for _, v := range o {
		n += v
	}
	return n
}

// hostile runs n connections from h to addr, workers at a time, each
// handled by fn on a fresh connection; it returns how they ended. A failed
// connect counts as an outcome ("connect: ...").
func hostile(h *Host, addr string, n, workers int, fn func(i int, c net.Conn) string) Outcomes {
	var mu sync.Mutex
	out := Outcomes{}
	count := func(what string) {
		mu.Lock()
		out[what]++
		mu.Unlock()
	}
	next := make(chan int)
	go func() {
		for i := range n {
			next <- i
		}
		close(next)
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Connects happen on this thread, inside the host.
			err := h.Do(func() error {
				d := net.Dialer{Timeout: 5 * time.Second}
				for i := range next {
					c, err := d.Dial("tcp", addr)
					if err != nil {
						count("connect: " + errText(err))
						continue
					}
					count(fn(i, c))
				}
				return nil
			})
			if err != nil {
				for range next {
					count("netlab: " + err.Error())
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// ConnectClose opens n connections to addr and closes each at once.
func ConnectClose(h *Host, addr string, n, workers int) Outcomes {
	return hostile(h, addr, n, workers, func(_ int, c net.Conn) string {
		c.Close()
		return "closed"
	})
}

// RandomBytes sends each of n connections 1 byte to maxLen random bytes
// and reads what the proxy answers, for up to wait.
func RandomBytes(h *Host, addr string, n, workers, maxLen int, wait time.Duration) Outcomes {
	return hostile(h, addr, n, workers, func(i int, c net.Conn) string {
		r := rand.New(rand.NewPCG(uint64(i), 12))
		b := make([]byte, 1+r.IntN(maxLen))
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		return sendAndRead(c, b, wait)
	})
}

// BigHeaderLines sends each of n connections a request head with a header
// line of size bytes and reads what the proxy answers, for up to wait.
func BigHeaderLines(h *Host, addr string, n, workers, size int, wait time.Duration) Outcomes {
	head := append([]byte("GET /big HTTP/1.1\r\nHost: big.example\r\nX-Big: "), bytes.Repeat([]byte("b"), size)...)
	head = append(head, "\r\n\r\n"...)
	return hostile(h, addr, n, workers, func(_ int, c net.Conn) string { return sendAndRead(c, head, wait) })
}

// sendAndRead writes b (while reading: the proxy may answer and close
// before it has read it all) and returns the first line of the answer, or
// why there was none; it closes c (and waits for the write to end).
func sendAndRead(c net.Conn, b []byte, wait time.Duration) string {
	c.SetDeadline(time.Now().Add(wait))
	wrote := make(chan struct{})
	go func() { // ends at the deadline or when c closes below
		defer close(wrote)
		c.Write(b)
	}()
	defer func() { c.Close(); <-wrote }()
	buf := make([]byte, 512)
	n, err := io.ReadAtLeast(c, buf, 1)
	if n > 0 {
		line, _, _ := bytes.Cut(buf[:n], []byte("\r\n"))
		return string(line)
	}
	if errors.Is(err, io.EOF) {
		return "closed without a reply"
	}
	return "no reply: " + errText(err)
}
