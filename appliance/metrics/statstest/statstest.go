// Package statstest renders a page, such as halbd's /stats, in Debian's
// headless chromium for tests: the DOM after the page loaded, and a PNG
// screenshot. Tests that use it skip when Chromium finds none
// (apt-get install chromium).
package statstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Chromium is the path of a chromium binary, or "" when none is installed.
func Chromium() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// run runs headless chromium with args and a fresh profile, in its own
// process group that is killed when ctx ends or the run is over.
func run(ctx context.Context, args ...string) ([]byte, error) {
	bin := Chromium()
	if bin == "" {
		return nil, fmt.Errorf("chromium: not installed (apt-get install chromium)")
	}
	profile, err := os.MkdirTemp("", "statstest-chromium-")
	if err != nil {
		return nil, fmt.Errorf("chromium profile: %w", err)
	}
	defer os.RemoveAll(profile)
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
		"--disable-background-networking", "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
		"--user-data-dir=" + profile}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.Dir = profile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers it left behind
	}
	if err != nil {
		return out, fmt.Errorf("chromium %s: %w: %s", strings.Join(args, " "), err, lastLines(stderr.String(), 5))
	}
	return out, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// DumpDOM returns the DOM of url as chromium rendered it (after the load
// event). Credentials for basic auth go in the URL
// ("http://user:pass@host:port/stats").
func DumpDOM(ctx context.Context, url string) (string, error) {
	out, err := run(ctx, "--dump-dom", url)
	return string(out), err
}

// Screenshot writes a PNG of url as a width×height window shows it to
// file.
func Screenshot(ctx context.Context, url, file string, width, height int) error {
	if _, err := run(ctx, "--screenshot="+file, "--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height), url); err != nil {
		return err
	}
	st, err := os.Stat(file)
	if err != nil {
		return fmt.Errorf("chromium screenshot of %s: %w", url, err)
	}
	if st.Size() == 0 {
		return fmt.Errorf("chromium screenshot of %s: %s is empty", url, file)
	}
	return nil
}
