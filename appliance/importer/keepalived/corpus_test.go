package keepalived_test

import (
	"os"
	"path/filepath"
	"testing"

	"halb/appliance/importer"
)

// TestCorpus imports every keepalived.conf of the shared corpus alone (no
// haproxy.cfg): it must parse and give a config halb's validation accepts.
func TestCorpus(t *testing.T) {
	var files []string
	err := filepath.WalkDir("../testdata", func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "keepalived.conf" {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 7 {
		t.Fatalf("found %d keepalived.conf files in the corpus, want at least 7: %v", len(files), files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			r, err := importer.Import(importer.Options{Keepalived: f})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Config.VRRP) == 0 {
				t.Errorf("no VRRP instance imported")
			}
			if testing.Verbose() {
				t.Logf("%s\n%s", r.YAML, r.Report)
			}
		})
	}
}
