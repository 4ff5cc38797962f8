package daemon

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"halb/appliance/api"
)

// TestConsolePassword: the console password is set (long enough only),
// kept as a salted PBKDF2 hash in a 0600 file, checked, changed only with
// the old one, and removed; status of it follows, and the requirement
// follows console.require_password.
func TestConsolePassword(t *testing.T) {
	td := startDaemon(t, t.TempDir(), "")
	td.pw.iter = 1000 // the default's cost is for real nodes; see TestPasswordHashDefault
	if a := td.ConsoleAuth(); a.PasswordSet || !a.Required {
		t.Fatalf("unconfigured: %+v, want no password, required", a)
	}
	if err := td.CheckConsolePassword("anything"); !errors.Is(err, api.ErrNoPassword) {
		t.Fatalf("check without a password: %v", err)
	}
	err := td.SetConsolePassword("short", "")
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "at least 8 characters") || !strings.Contains(err.Error(), "it has 5") {
		t.Fatalf("a short password: %v", err)
	}
	// Eight characters, not eight bytes.
	if err := td.SetConsolePassword("pässwört", ""); err != nil {
		t.Fatal(err)
	}
	if ev := td.waitEvent("console.password_set"); ev.Message != "console password set" {
		t.Errorf("event %q", ev.Message)
	}
	file := td.pw.path
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v %v, want mode 0600", fi, err)
	}
	b, _ := os.ReadFile(file)
	first := string(b)
	if !strings.HasPrefix(first, "pbkdf2-sha256$1000$") || strings.Contains(first, "pässwört") || len(first) < 60 {
		t.Fatalf("password file holds %q", first)
	}
	if a := td.ConsoleAuth(); !a.PasswordSet || !a.Required {
		t.Fatalf("after set: %+v", a)
	}
	if err := td.CheckConsolePassword("pässwört"); err != nil {
		t.Fatalf("the right password: %v", err)
	}

	// A change needs the old password.
	if err := td.SetConsolePassword("new password", ""); !errors.Is(err, api.ErrUnauthorized) || !strings.Contains(err.Error(), "give the current one as old") {
		t.Fatalf("change without the old password: %v", err)
	}
	if err := td.SetConsolePassword("new password", "pässwört"); err != nil {
		t.Fatal(err)
	}
	td.waitEvent("console.password_changed")
	b, _ = os.ReadFile(file)
	if string(b) == first || strings.Split(string(b), "$")[2] == strings.Split(first, "$")[2] {
		t.Errorf("a new password did not get a new salt:\n%s%s", first, b)
	}
	if err := td.CheckConsolePassword("pässwört"); !errors.Is(err, api.ErrUnauthorized) {
		t.Fatalf("the old password after a change: %v", err)
	}
	td.waitEvent("console.auth_failed")

	// console.require_password follows the running config.
	if _, err := td.Apply("", []byte("node: {name: lb1}\nconsole: {require_password: false}\n")); err != nil {
		t.Fatal(err)
	}
	if a := td.ConsoleAuth(); !a.PasswordSet || a.Required {
		t.Fatalf("with require_password false: %+v", a)
	}

	if err := td.ResetConsolePassword(); err != nil {
		t.Fatal(err)
	}
	td.waitEvent("console.password_removed")
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) || td.ConsoleAuth().PasswordSet {
		t.Fatalf("after reset the file is there (%v) or a password is set", err)
	}
	if err := td.ResetConsolePassword(); err != nil {
		t.Fatalf("reset without a password: %v", err)
	}
	// After a reset, a password is set without an old one.
	if err := td.SetConsolePassword("another one", ""); err != nil {
		t.Fatal(err)
	}
}

// TestPasswordDelay: after a wrong password no check is made before a
// delay that doubles with each wrong one in a row (1s, 2s, 4s, ..., at
// most a minute), not even of the right one; the right one ends it.
func TestPasswordDelay(t *testing.T) {
	// The store's clock, moved by the test (one goroutine).
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newPasswordStore(t.TempDir() + "/pw")
	p.iter, p.now = 1000, func() time.Time { return now }
	if err := p.set("right password", ""); err != nil {
		t.Fatal(err)
	}
	retry := func(want time.Duration) {
		t.Helper()
		var re *api.RetryError
		if err := p.check("right password"); !errors.As(err, &re) || re.After != want {
			t.Fatalf("check during the delay: %v, want a retry after %v", err, want)
		}
	}
	for i, delay := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		if err := p.check("wrong"); !errors.Is(err, api.ErrUnauthorized) {
			t.Fatalf("wrong password %d: %v", i+1, err)
		}
		retry(delay)
		now = now.Add(delay / 2)
		retry(delay / 2)
		// A change of the password is held off too.
		if err := p.set("new password", "right password"); !errors.As(err, new(*api.RetryError)) {
			t.Fatalf("set during the delay: %v", err)
		}
		now = now.Add(delay / 2)
	}
	for range 10 {
		p.check("wrong")
		now = now.Add(time.Hour)
	}
	p.check("wrong")
	retry(time.Minute)
	now = now.Add(time.Minute)
	if err := p.check("right password"); err != nil {
		t.Fatalf("the right password after the delay: %v", err)
	}
	if err := p.check("wrong"); !errors.Is(err, api.ErrUnauthorized) {
		t.Fatal(err)
	}
	retry(time.Second) // the right one started the count again
}

// TestPasswordHash: a hash keeps its iteration count, so it verifies after
// the count for new hashes changes; new hashes use PasswordIterations; a
// file that is not a hash is reported, not taken as no password.
func TestPasswordHash(t *testing.T) {
	p := newPasswordStore(t.TempDir() + "/pw")
	if p.iter != PasswordIterations || PasswordIterations != 600_000 {
		t.Fatalf("new hashes use %d iterations", p.iter)
	}
	p.iter = 1000
	if err := p.set("right password", ""); err != nil {
		t.Fatal(err)
	}
	p.iter = 2000
	if err := p.check("right password"); err != nil {
		t.Fatalf("a hash of 1000 iterations after the count changed: %v", err)
	}
	os.WriteFile(p.path, []byte("sha1:abc\n"), 0o600)
	err := p.check("right password")
	if err == nil || errors.Is(err, api.ErrUnauthorized) || !strings.Contains(err.Error(), "not a pbkdf2-sha256 hash (halbctl console password --reset removes it)") {
		t.Fatalf("a file that is not a hash: %v", err)
	}
	if !p.isSet() {
		t.Error("a damaged password file counts as no password")
	}
	if err := p.set("new password", ""); err == nil {
		t.Error("a damaged password file was replaced without the old password")
	}
}

// TestPasswordHashDefault: a hash made with the default count verifies
// (one real-cost hash, about 0.2s here).
func TestPasswordHashDefault(t *testing.T) {
	p := newPasswordStore(t.TempDir() + "/pw")
	if err := p.set("right password", ""); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p.path)
	if !strings.HasPrefix(string(b), "pbkdf2-sha256$600000$") {
		t.Fatalf("hash %q", b)
	}
	if err := p.check("right password"); err != nil {
		t.Fatal(err)
	}
}
