package metrics

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"halb/appliance/config"
	"halb/appliance/metrics/statstest"
	"halb/internal/testutil"
)

// TestStatsInChromium renders /stats in a real browser (Debian's headless
// chromium), behind basic auth, and checks the numbers of the snapshot are
// in the DOM it built; then takes a screenshot. STATS_SCREENSHOT=FILE keeps
// the PNG.
func TestStatsInChromium(t *testing.T) {
	if statstest.Chromium() == "" {
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	addr := testutil.ReservedAddr(t)
	start(t, fullSnapshot, config.Observe{Listen: addr, Users: []config.ObserveUser{{Name: "ops", PasswordHash: hash(t, "pw")}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dom, err := statstest.DumpDOM(ctx, "http://ops:pw@"+addr+"/stats")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"halb lb1 stats", ">98835432<", ">23456<", ">15000<", ">12590<", "UP 40%", ">DOWN<", ">DRAIN<",
		"(unchecked)", ">MASTER<", ">BACKUP<", "192.168.10.100/24", "in sync", "1.5 ms", ">847<",
		"EXPIRES SOON: 2026-12-12 (in 7 days)", "NOT LOADED: open /etc/halb/tls/broken.pem", "tls verify NONE"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM: %.3000s", dom)
	}
	file := os.Getenv("STATS_SCREENSHOT")
	if file == "" {
		file = filepath.Join(t.TempDir(), "stats.png")
	}
	if err := statstest.Screenshot(ctx, "http://ops:pw@"+addr+"/stats", file, 1400, 1000); err != nil {
		t.Fatal(err)
	}
	png, err := os.ReadFile(file)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s is not a PNG (%v)", file, err)
	}
}
