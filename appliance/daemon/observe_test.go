package daemon

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"halb/appliance/api"
	"halb/appliance/config"
	"halb/internal/testutil"
)

// TestObserveWiring: the observe section reaches the listener and the log
// targets; a listen address that is held refuses the config at the line of
// observe.listen and changes nothing; access records of a tcp service land
// in a file target with the node name as host, and daemon lines too;
// status.observe reports both.
func TestObserveWiring(t *testing.T) {
	dir := t.TempDir()
	srv := namer(t, "srv")
	x := testutil.ReservedAddr(t)
	obs := testutil.ReservedAddr(t)
	logFile := filepath.Join(dir, "log", "halb.log")
	base := configOf(strings.Replace(service("web", x, "b", 1), "mode: tcp,", "mode: tcp, access_log: true,", 1), backend("b", "s1="+srv))
	good := base + fmt.Sprintf("observe:\n  listen: %q\n  logs:\n    - {name: f, to: file, path: %q, streams: [access, daemon]}\n", obs, logFile)
	testutil.Free(t, x)
	testutil.Free(t, obs)
	td := startDaemon(t, dir, good)
	waitName(t, x, "srv")

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + obs + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `halb_frontend_sessions_total{proxy="web"} 1`) {
		t.Fatalf("/metrics: %d, web's session not counted:\n%.2000s", code, body)
	}
	eventually(t, "the access line and a daemon line in the file", func() bool {
		b, _ := os.ReadFile(logFile)
		return strings.Contains(string(b), " lb1 access: 127.0.0.1:") && strings.Contains(string(b), " web b/s1 ") &&
			strings.Contains(string(b), " lb1 daemon.")
	})

	// A held listen address: refused at its line, the old listener stays.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	busy := strings.Replace(good, obs, held.Addr().String(), 1)
	_, err = td.Apply("busy.yaml", []byte(busy))
	es := config.AsErrors(err)
	if !errors.Is(err, api.ErrConflict) || len(es) != 1 || es[0].Path != "observe.listen" || es[0].Line != strings.Count(base, "\n")+2 {
		t.Fatalf("Apply with a held observe.listen: %v (%+v), want one error at observe.listen line %d", err, es, strings.Count(base, "\n")+2)
	}
	if code, _ := get("/stats;json"); code != 200 {
		t.Fatalf("the old listener does not answer after the refused config: %d", code)
	}
	var st ObserveStatus
	if err := jsonOf(td.Status().Observe, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Logs) != 1 || st.Logs[0].Name != "f" || st.Logs[0].Written == 0 || st.Listener.Listening == "" {
		t.Fatalf("status.observe %+v", st)
	}
	// Off: the listener closes.
	if _, err := td.Apply("", []byte(base)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the listener closed", func() bool {
		c, err := net.DialTimeout("tcp", obs, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}
