package peer

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"halb/appliance/proxy"
)

// Persistence sync: the source-persistence entries of each node's proxy
// (new, moved to another server, or renewed) go to every paired peer in
// batches, so that after a failover a client keeps its server. The queue
// of each link is bounded; when it overflows, or when the link comes back
// after a break, the link sends the whole table instead (catch-up).
// Cookie persistence needs nothing: the cookie names the server, which
// both nodes know by the same name.

// Bounds of the persistence sync.
const (
	// stickQueueMax bounds the entries waiting for one peer (about 100
	// bytes each).
	stickQueueMax = 100_000
	// stickBatch is the most entries one request carries.
	stickBatch = 5000
	// stickFlushEvery is how long entries wait to be batched.
	stickFlushEvery = 100 * time.Millisecond
)

type stickBatchMsg struct {
	Entries []proxy.StickEntry `json:"entries"`
}

type stickReply struct {
	Taken int `json:"taken"`
}

// QueueStick sends a source-persistence entry to every paired peer. It
// never blocks.
func (p *Peer) QueueStick(e proxy.StickEntry) {
	for _, l := range p.linkList() {
		l.queueStick(e)
	}
}

func (l *link) queueStick(e proxy.StickEntry) {
	l.stickMu.Lock()
	defer l.stickMu.Unlock()
	if l.stickFull {
		return // the whole table goes anyway
	}
	if l.stickQ == nil {
		l.stickQ = map[[2]string]proxy.StickEntry{}
	}
	if len(l.stickQ) >= stickQueueMax {
		l.stickQ, l.stickFull = nil, true
		return
	}
	l.stickQ[[2]string{e.Backend, e.Key}] = e
}

// needStickCatchUp has the link send the whole table next.
func (l *link) needStickCatchUp() {
	l.stickMu.Lock()
	l.stickQ, l.stickFull = nil, true
	l.stickMu.Unlock()
}

// flushStick sends what is queued (or the whole table when a catch-up is
// due) in batches; what cannot be sent stays for the next try.
func (l *link) flushStick(ctx context.Context) {
	l.stickMu.Lock()
	full, q := l.stickFull, l.stickQ
	l.stickQ, l.stickFull = nil, false
	l.stickMu.Unlock()
	var es []proxy.StickEntry
	if full {
		es = l.p.opts.StickEntries()
	} else {
		for _, e := range q {
			es = append(es, e)
		}
	}
	for len(es) > 0 {
		n := min(len(es), stickBatch)
		var rep stickReply
		if err := l.post(ctx, "/peer/v1/stick", stickBatchMsg{Entries: es[:n]}, &rep); err != nil {
			if full {
				l.needStickCatchUp()
			} else {
				for _, e := range es {
					l.queueStick(e)
				}
			}
			return
		}
		l.stickMu.Lock()
		l.stickSent += uint64(n)
		l.stickMu.Unlock()
		es = es[n:]
	}
}

func (p *Peer) handleStick(w http.ResponseWriter, r *http.Request) {
	pc, ok := p.peerOf(w, r)
	if !ok {
		return
	}
	var m stickBatchMsg
	if !readJSON(w, r, &m) {
		return
	}
	n := p.opts.ImportStick(m.Entries)
	if l := p.linkOf(pc.Name); l != nil {
		l.stickMu.Lock()
		l.stickReceived += uint64(len(m.Entries))
		l.stickMu.Unlock()
	}
	writeJSON(w, stickReply{Taken: n})
}

// stickLine says what the persistence sync did, for status.
func (l *link) stickLine() string {
	l.stickMu.Lock()
	defer l.stickMu.Unlock()
	if l.stickSent == 0 && l.stickReceived == 0 {
		return ""
	}
	return fmt.Sprintf("%d sent, %d received, %d queued", l.stickSent, l.stickReceived, len(l.stickQ))
}
