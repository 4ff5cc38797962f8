package balance

import (
	"sync"
	"time"
)

// StickTable maps a client key (e.g. source IP) to a server name with an
// expiry refreshed on each use. It is an interface so the peer-sync
// component can later replicate it.
type StickTable interface {
	// Get returns the server of key; ok=false if absent or expired. A hit
	// refreshes the expiry.
	Get(key string, now time.Time) (server string, ok bool)
	// Put sets the server of key and refreshes its expiry.
	Put(key, server string, now time.Time)
	// Delete removes key.
	Delete(key string)
	// Len is the number of entries held.
	Len() int
}

// Entry is one stick table entry as reported by Entries.
type Entry struct {
	Key, Server string
	Expires     time.Time
}

var _ StickTable = (*Table)(nil)

// maxShards is the number of shards of a large table. Small tables have
// fewer (at least minPerShard entries each) so that eviction order is
// close to global least-recently-used.
const (
	maxShards   = 16
	minPerShard = 64
)

// Table is the in-memory StickTable. Entries expire after the table's
// idle time; Get and Put of a key renew it. Keys are spread over shards by
// hash, each with its own lock, map and list in order of last use (which is
// also expiry order, since the idle time is fixed). Each shard holds at
// most its share of max; a Put into a full shard first drops its expired
// entries and then, if still full, its least recently used one.
type Table struct {
	expire time.Duration
	shards []shard
	// onChange, when set, hears of every entry that is new, points to
	// another server, or was renewed a quarter of the idle time after it
	// was last told (replication to a peer): after the shard's lock is
	// released, on the caller's goroutine.
	onChange func(Entry)
}

// OnChange sets f to hear of new, changed and renewed entries (see
// Table.onChange); entries put with Import are not told. Set it before the
// table is used.
func (t *Table) OnChange(f func(Entry)) { t.onChange = f }

type shard struct {
	mu  sync.Mutex
	max int // 0 = unbounded
	m   map[string]*node
	// head.next is the most recently used node, head.prev the least: a
	// circular list with head as sentinel.
	head node
}

type node struct {
	key, server string
	expires     time.Time
	told        time.Time // when onChange last heard of it
	prev, next  *node
}

// NewStickTable returns an in-memory table whose entries expire after
// expire idle and that holds at most limit entries (limit <= 0: no bound).
func NewStickTable(expire time.Duration, limit int) *Table {
	n := maxShards
	if limit > 0 {
		n = min(maxShards, max(1, limit/minPerShard))
	}
	t := &Table{expire: expire, shards: make([]shard, n)}
	for i := range t.shards {
		s := &t.shards[i]
		s.m = map[string]*node{}
		s.head.prev, s.head.next = &s.head, &s.head
		if limit > 0 {
			// Spread limit over the shards; their sum is exactly limit.
			s.max = limit / n
			if i < limit%n {
				s.max++
			}
		}
	}
	return t
}

func (t *Table) shard(key string) *shard {
	if len(t.shards) == 1 {
		return &t.shards[0]
	}
	return &t.shards[mix64(fnv1a(key))%uint64(len(t.shards))]
}

// Get returns the server of key if it has not expired at now, and renews
// its expiry to now plus the idle time.
func (t *Table) Get(key string, now time.Time) (string, bool) {
	s := t.shard(key)
	s.mu.Lock()
	n := s.m[key]
	if n == nil {
		s.mu.Unlock()
		return "", false
	}
	if !now.Before(n.expires) {
		s.remove(n)
		s.mu.Unlock()
		return "", false
	}
	n.expires = now.Add(t.expire)
	s.toFront(n)
	e := Entry{Key: key, Server: n.server, Expires: n.expires}
	tell := t.onChange != nil && now.Sub(n.told) >= t.expire/4
	if tell {
		n.told = now
	}
	s.mu.Unlock()
	if tell {
		t.onChange(e)
	}
	return e.Server, true
}

// Put sets the server of key, expiring at now plus the idle time.
func (t *Table) Put(key, server string, now time.Time) {
	t.put(key, server, now.Add(t.expire), now, t.onChange != nil)
}

// Import sets the server of key until expires, as a peer's table has it,
// without telling onChange (which would send it back); an expired entry
// is ignored. It reports whether it set the entry.
func (t *Table) Import(key, server string, expires, now time.Time) bool {
	if !now.Before(expires) {
		return false
	}
	t.put(key, server, expires, now, false)
	return true
}

func (t *Table) put(key, server string, expires, now time.Time, tell bool) {
	s := t.shard(key)
	s.mu.Lock()
	if n := s.m[key]; n != nil {
		// Import (tell false) marks the entry as known to the peer.
		if !tell || n.server != server || now.Sub(n.told) >= t.expire/4 {
			n.told = now
		} else {
			tell = false
		}
		n.server, n.expires = server, expires
		s.toFront(n)
		s.mu.Unlock()
		if tell {
			t.onChange(Entry{Key: key, Server: server, Expires: expires})
		}
		return
	}
	s.purge(now)
	var n *node
	if s.max > 0 && len(s.m) >= s.max {
		// Full of live entries: reuse the least recently used one.
		n = s.head.prev
		s.remove(n)
	} else {
		n = &node{}
	}
	*n = node{key: key, server: server, expires: expires, told: now}
	s.m[key] = n
	s.toFront(n)
	s.mu.Unlock()
	if tell {
		t.onChange(Entry{Key: key, Server: server, Expires: expires})
	}
}

// Delete removes key.
func (t *Table) Delete(key string) {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.m[key]; n != nil {
		s.remove(n)
	}
}

// Len returns the number of entries held, including expired ones not yet
// dropped (Put and Purge drop them).
func (t *Table) Len() int {
	total := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		total += len(s.m)
		s.mu.Unlock()
	}
	return total
}

// Purge drops the entries expired at now and returns how many it dropped;
// the owner may call it periodically to free memory of idle tables.
func (t *Table) Purge(now time.Time) int {
	total := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		total += s.purge(now)
		s.mu.Unlock()
	}
	return total
}

// Entries returns a snapshot of the entries live at now, most recently used
// first within each shard, for status and replication.
func (t *Table) Entries(now time.Time) []Entry {
	var out []Entry
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for n := s.head.next; n != &s.head; n = n.next {
			if now.Before(n.expires) {
				out = append(out, Entry{Key: n.key, Server: n.server, Expires: n.expires})
			}
		}
		s.mu.Unlock()
	}
	return out
}

// purge drops expired entries from the least recently used end and stops
// at the first live one. Each entry is dropped once, so the cost is O(1)
// amortised per Put.
func (s *shard) purge(now time.Time) int {
	dropped := 0
	for n := s.head.prev; n != &s.head && !now.Before(n.expires); n = s.head.prev {
		s.remove(n)
		dropped++
	}
	return dropped
}

func (s *shard) remove(n *node) {
	delete(s.m, n.key)
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

// toFront makes n the most recently used node, linking it in if it is not.
func (s *shard) toFront(n *node) {
	if n.prev != nil {
		n.prev.next, n.next.prev = n.next, n.prev
	}
	n.prev, n.next = &s.head, s.head.next
	s.head.next.prev = n
	s.head.next = n
}
