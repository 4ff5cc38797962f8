package metrics

import (
	"crypto/sha256"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// authTTL is how long a (user, password) pair that passed bcrypt is taken
// without asking bcrypt again: one check costs 50-100 ms of CPU at cost 10,
// and Prometheus may scrape every second.
const authTTL = 2 * time.Minute

// authCacheMax bounds the cache; when full, expired entries go, then all.
const authCacheMax = 256

// authCache remembers pairs that passed. The key is the SHA-256 of user,
// password and the stored hash, so the password is not kept and a changed
// hash (a new password in the config) misses.
type authCache struct {
	mu      sync.Mutex
	ok      map[[32]byte]time.Time // key → expiry
	checks  int                    // bcrypt comparisons made (tests)
	slots   chan struct{}          // bounds the bcrypt comparisons running at once
	dummy   []byte
	dummyMu sync.Once
}

func newAuthCache() *authCache {
	return &authCache{ok: map[[32]byte]time.Time{}, slots: make(chan struct{}, 2)}
}

func authKey(user, pass string, hash []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(pass))
	h.Write([]byte{0})
	h.Write(hash)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// check reports whether pass is user's password in users (name → bcrypt
// hash). An unknown user costs a bcrypt comparison too, so timing does not
// tell which names exist.
func (a *authCache) check(users map[string][]byte, user, pass string, now time.Time) bool {
	hash, known := users[user]
	if known {
		k := authKey(user, pass, hash)
		a.mu.Lock()
		exp, hit := a.ok[k]
		a.mu.Unlock()
		if hit && now.Before(exp) {
			return true
		}
	} else {
		a.dummyMu.Do(func() {
			a.dummy, _ = bcrypt.GenerateFromPassword([]byte("halb: no such user"), bcrypt.DefaultCost)
		})
		hash = a.dummy
	}
	a.slots <- struct{}{}
	err := bcrypt.CompareHashAndPassword(hash, []byte(pass))
	<-a.slots
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checks++
	if err != nil || !known {
		return false
	}
	if len(a.ok) >= authCacheMax {
		for k, exp := range a.ok {
			if !now.Before(exp) {
				delete(a.ok, k)
			}
		}
		if len(a.ok) >= authCacheMax {
			clear(a.ok)
		}
	}
	a.ok[authKey(user, pass, hash)] = now.Add(authTTL)
	return true
}

// comparisons is how many bcrypt comparisons ran.
func (a *authCache) comparisons() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.checks
}
