package daemon

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"halb/appliance/api"
	"halb/appliance/config"
)

// The console admin password is kept as one line in the state directory,
// mode 0600: "pbkdf2-sha256$ITERATIONS$SALT$KEY", SALT (16 random bytes)
// and KEY (32 bytes) in unpadded base64. The iteration count is stored, so
// a hash made with another count still verifies.
const (
	// PasswordIterations is the PBKDF2-HMAC-SHA256 iteration count of new
	// hashes: OWASP's recommendation for PBKDF2-HMAC-SHA256 (2023). One
	// hash costs about 190ms of one core here (x86-64 with SHA
	// instructions); it makes guessing from a stolen state directory
	// slow, while the console asks rarely.
	PasswordIterations = 600_000
	// MinPasswordLen and MaxPasswordLen bound a console password, in
	// characters and bytes.
	MinPasswordLen = 8
	MaxPasswordLen = 1024

	passwordScheme = "pbkdf2-sha256"
	passwordSalt   = 16
	passwordKey    = 32
)

// passwordStore keeps the console password's hash and guards checks of
// it: one check at a time, and after a wrong password none before a delay
// that doubles with every wrong one in a row (1s, 2s, 4s, ... at most a
// minute), so a guesser gets about one try a minute.
type passwordStore struct {
	path string
	iter int // for new hashes; tests lower it
	now  func() time.Time

	mu    sync.Mutex // one check or change at a time
	fails int        // wrong passwords in a row
	next  time.Time  // no check before
}

func newPasswordStore(path string) *passwordStore {
	return &passwordStore{path: path, iter: PasswordIterations, now: time.Now}
}

// failDelay is how long checks wait after n wrong passwords in a row.
func failDelay(n int) time.Duration {
	return min(time.Second<<min(n-1, 6), time.Minute)
}

// hash is a password hash as stored.
type hash struct {
	iter      int
	salt, key []byte
}

func (h hash) String() string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("%s$%d$%s$%s", passwordScheme, h.iter, enc.EncodeToString(h.salt), enc.EncodeToString(h.key))
}

func parseHash(s string) (hash, error) {
	parts := strings.Split(strings.TrimSpace(s), "$")
	if len(parts) != 4 || parts[0] != passwordScheme {
		return hash{}, fmt.Errorf("not a %s hash", passwordScheme)
	}
	var h hash
	var err error
	if h.iter, err = strconv.Atoi(parts[1]); err != nil || h.iter < 1 {
		return hash{}, fmt.Errorf("bad iteration count %q", parts[1])
	}
	enc := base64.RawStdEncoding
	if h.salt, err = enc.DecodeString(parts[2]); err != nil || len(h.salt) < 8 {
		return hash{}, errors.New("bad salt")
	}
	if h.key, err = enc.DecodeString(parts[3]); err != nil || len(h.key) != passwordKey {
		return hash{}, errors.New("bad key")
	}
	return h, nil
}

func derive(password string, salt []byte, iter int) []byte {
	key, err := pbkdf2.Key(sha256.New, password, salt, iter, passwordKey)
	if err != nil {
		// Only in FIPS mode with a short key; ours is 32 bytes.
		panic(fmt.Sprintf("pbkdf2: %v", err))
	}
	return key
}

// load reads the stored hash; ok is false when no password is set. A file
// that is not a hash is an error (it is not treated as no password).
func (p *passwordStore) load() (h hash, ok bool, err error) {
	b, err := os.ReadFile(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		return hash{}, false, nil
	}
	if err != nil {
		return hash{}, false, fmt.Errorf("console password: %w", err)
	}
	if h, err = parseHash(string(b)); err != nil {
		return hash{}, false, fmt.Errorf("console password: %s: %w (halbctl console password --reset removes it)", p.path, err)
	}
	return h, true, nil
}

// isSet reports whether a console password is set.
func (p *passwordStore) isSet() bool {
	_, ok, err := p.load()
	return ok || err != nil
}

// verify checks password against the stored hash, through the guard:
// nil when right, an error wrapping api.ErrUnauthorized when wrong, a
// *api.RetryError while the delay after wrong passwords runs, one wrapping
// api.ErrNoPassword when none is set. Callers hold p.mu.
func (p *passwordStore) verify(password string) error {
	if wait := p.next.Sub(p.now()); wait > 0 {
		return &api.RetryError{After: wait, Msg: fmt.Sprintf("%d wrong console password(s) in a row", p.fails)}
	}
	h, ok, err := p.load()
	if err != nil {
		return err
	}
	if !ok {
		return api.Errorf(api.ErrNoPassword, "no console password is set")
	}
	if subtle.ConstantTimeCompare(derive(password, h.salt, h.iter), h.key) == 1 {
		p.fails, p.next = 0, time.Time{}
		return nil
	}
	p.fails = min(p.fails+1, 1000)
	p.next = p.now().Add(failDelay(p.fails))
	return api.Errorf(api.ErrUnauthorized, "wrong console password")
}

// check verifies password (see verify).
func (p *passwordStore) check(password string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.verify(password)
}

// set makes password the console password. When one is set, old must be
// it (checked as by check). A password of fewer than MinPasswordLen
// characters, or more than MaxPasswordLen bytes, wraps api.ErrInvalid.
func (p *passwordStore) set(password, old string) error {
	if n := utf8.RuneCountInString(password); n < MinPasswordLen || len(password) > MaxPasswordLen {
		return api.Errorf(api.ErrInvalid, "the console password must have at least %d characters (and at most %d bytes); it has %d",
			MinPasswordLen, MaxPasswordLen, n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok, err := p.load(); ok || err != nil {
		if old == "" {
			return api.Errorf(api.ErrUnauthorized, "a console password is set: give the current one as old (or remove it with halbctl console password --reset)")
		}
		if err := p.verify(old); err != nil {
			return err
		}
	}
	h := hash{iter: p.iter, salt: make([]byte, passwordSalt)}
	rand.Read(h.salt)
	h.key = derive(password, h.salt, h.iter)
	if err := config.WriteFile(p.path, []byte(h.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("console password: %w", err)
	}
	return nil
}

// reset removes the console password; removing none is no error.
func (p *passwordStore) reset() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fails, p.next = 0, time.Time{}
	if err := os.Remove(p.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("console password: %w", err)
	}
	return nil
}

// ConsoleAuth says whether a console password is set, and whether the
// running config requires the console to ask for it (it does while
// unconfigured).
func (d *Daemon) ConsoleAuth() api.ConsoleAuth {
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	return api.ConsoleAuth{PasswordSet: d.pw.isSet(), Required: cfg == nil || cfg.Console.PasswordRequired()}
}

// SetConsolePassword sets the console password (see api.Daemon).
func (d *Daemon) SetConsolePassword(password, old string) error {
	had := d.pw.isSet()
	if err := d.pw.set(password, old); err != nil {
		d.passwordRefused("set", err)
		return err
	}
	what := "set"
	if had {
		what = "changed"
	}
	d.log.Info("console password " + what)
	d.publish("console.password_"+what, "console password "+what, nil)
	return nil
}

// ResetConsolePassword removes the console password.
func (d *Daemon) ResetConsolePassword() error {
	if err := d.pw.reset(); err != nil {
		return err
	}
	d.log.Warn("console password removed")
	d.publish("console.password_removed", "console password removed", nil)
	return nil
}

// CheckConsolePassword checks a password given at the console (see
// api.Daemon).
func (d *Daemon) CheckConsolePassword(password string) error {
	err := d.pw.check(password)
	if err != nil {
		d.passwordRefused("check", err)
	}
	return err
}

// passwordRefused logs a refused password check or change, and puts a
// wrong password on the event stream.
func (d *Daemon) passwordRefused(what string, err error) {
	d.log.Warn("console password "+what+" refused", "err", err)
	if errors.Is(err, api.ErrUnauthorized) {
		d.publish("console.auth_failed", "console password "+what+": "+err.Error(), nil)
	}
}
