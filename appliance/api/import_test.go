package api

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"halb/appliance/config"
)

// TestImport: GET /v1/import imports the files in ImportDir and answers
// the commented config and its report without applying anything; no files
// is 404 (ErrNotFound); a parse error is answered with its position.
func TestImport(t *testing.T) {
	dir := t.TempDir()
	_, c, _ := serveWith(t, Options{ImportDir: dir})
	ctx := context.Background()
	if _, err := c.Import(ctx, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no files: %v, want ErrNotFound", err)
	}
	hc := filepath.Join(dir, "haproxy.cfg")
	os.WriteFile(hc, []byte("frontend web\n    bind :80\n    mode http\n    default_backend www\n\nbackend www\n    mode http\n    server www1 10.0.0.11:80 check\n"), 0o644)
	res, err := c.Import(ctx, "lb7")
	if err != nil {
		t.Fatal(err)
	}
	if res.Error != "" || len(res.Files) != 1 || res.Files[0] != hc {
		t.Fatalf("import: %+v", res)
	}
	cfg, err := config.Parse("import", []byte(res.YAML))
	if err != nil {
		t.Fatalf("the answer's config does not parse: %v\n%s", err, res.YAML)
	}
	if cfg.Node.Name != "lb7" || len(cfg.Services) != 1 || len(cfg.Backends) != 1 {
		t.Errorf("config: %s", res.YAML)
	}
	if !strings.Contains(res.Report, "dropped,") {
		t.Errorf("report: %q", res.Report)
	}
	if _, err := c.Import(ctx, "not a name"); err == nil {
		t.Error("an invalid node name was taken")
	}
	os.WriteFile(hc, []byte("frontend web\n    bind \"unterminated\n"), 0o644)
	if res, err = c.Import(ctx, ""); err != nil || !strings.Contains(res.Error, hc+":2:") || res.YAML != "" {
		t.Errorf("parse error: %v %+v", err, res)
	}
}
