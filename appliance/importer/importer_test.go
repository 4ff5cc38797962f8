package importer

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"halb/appliance/config"
)

var update = flag.Bool("update", false, "rewrite the corpus goldens")

// caseOptions finds a node's files in dir.
func caseOptions(dir string) Options {
	var o Options
	if _, err := os.Stat(filepath.Join(dir, "keepalived.conf")); err == nil {
		o.Keepalived = filepath.Join(dir, "keepalived.conf")
	}
	if _, err := os.Stat(filepath.Join(dir, "haproxy.cfg")); err == nil {
		o.HAProxy = filepath.Join(dir, "haproxy.cfg")
	}
	return o
}

// golden compares got with the file at path (rewritten with -update).
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run TestCorpus -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -run TestCorpus -update rewrites it after a deliberate change):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestCorpus imports every case of testdata (configs as operators write
// them; a pair case has lb1/ and lb2/) and holds each result and report to
// its golden; each result passes halb's validation again from its text.
func TestCorpus(t *testing.T) {
	cases, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		n++
		dir := filepath.Join("testdata", c.Name())
		t.Run(c.Name(), func(t *testing.T) {
			var results []*Result
			var dirs []string
			if _, err := os.Stat(filepath.Join(dir, "lb1")); err == nil {
				dirs = []string{filepath.Join(dir, "lb1"), filepath.Join(dir, "lb2")}
				ra, rb, err := ImportPair(caseOptions(dirs[0]), caseOptions(dirs[1]))
				if err != nil {
					t.Fatal(err)
				}
				results = []*Result{ra, rb}
			} else {
				dirs = []string{dir}
				r, err := Import(caseOptions(dir))
				if err != nil {
					t.Fatal(err)
				}
				results = []*Result{r}
			}
			for i, r := range results {
				if _, err := config.Parse("halb.yaml", r.YAML); err != nil {
					t.Errorf("%s: the result does not validate: %v", dirs[i], err)
				}
				if !strings.HasPrefix(string(r.YAML), "# halb.yaml written by halbctl import") {
					t.Errorf("%s: the result does not start with its comment", dirs[i])
				}
				golden(t, filepath.Join(dirs[i], "halb.yaml.golden"), r.YAML)
				golden(t, filepath.Join(dirs[i], "report.golden"), []byte(r.Report.String()))
			}
		})
	}
	if n == 0 {
		t.Fatal("no cases in testdata")
	}
}
