package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"halb/appliance/config"
	"halb/appliance/importer"
	"halb/appliance/importer/source"
)

// GET /v1/import?node=NAME imports the keepalived.conf and haproxy.cfg that
// the image's halb-seed kept from the seed disk (Options.ImportDir) and
// answers the result and its report; nothing is applied (the console's
// setup wizard shows the report and puts the result in its draft). 404
// when there are no such files.

// ImportResult answers GET /v1/import.
type ImportResult struct {
	// Files are the paths imported.
	Files []string `json:"files"`
	// Error is why the files could not be imported (a parse error naming
	// file:line:column); then YAML is empty.
	Error string `json:"error,omitempty"`
	// YAML is the imported config, commented with where each part came
	// from.
	YAML string `json:"yaml,omitempty"`
	// Report lists every directive without an exact equivalent.
	Report  string `json:"report,omitempty"`
	Dropped int    `json:"dropped"`
	Changed int    `json:"changed"`
	Notes   int    `json:"notes"`
	// Partial: some directive was dropped or changed; taking the result
	// needs the operator's word (halbctl import's --allow-partial).
	Partial bool `json:"partial"`
}

func (s *Server) importFiles(w http.ResponseWriter, r *http.Request) {
	var o importer.Options
	if s.opts.ImportDir != "" {
		for _, f := range []struct {
			name string
			to   *string
		}{{"keepalived.conf", &o.Keepalived}, {"haproxy.cfg", &o.HAProxy}} {
			p := filepath.Join(s.opts.ImportDir, f.name)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				*f.to = p
			}
		}
	}
	if o.Keepalived == "" && o.HAProxy == "" {
		writeError(w, http.StatusNotFound, errors.New("no keepalived.conf or haproxy.cfg to import (a seed disk brings them)"))
		return
	}
	o.NodeName = r.URL.Query().Get("node")
	if o.NodeName != "" && !config.ValidNodeName(o.NodeName) {
		writeError(w, http.StatusBadRequest, errors.New("node: not a valid host name"))
		return
	}
	var res ImportResult
	for _, p := range []string{o.Keepalived, o.HAProxy} {
		if p != "" {
			res.Files = append(res.Files, p)
		}
	}
	im, err := importer.Import(o)
	if err != nil {
		res.Error = err.Error()
		writeJSON(w, http.StatusOK, res)
		return
	}
	res.YAML, res.Report = string(im.YAML), im.Report.String()
	res.Dropped, res.Changed, res.Notes = im.Report.Count(source.Dropped), im.Report.Count(source.Changed), im.Report.Count(source.Note)
	res.Partial = im.Report.Partial()
	writeJSON(w, http.StatusOK, res)
}

// Import asks the daemon to import the files its seed disk brought, for
// node name node ("" for the importer's choice). No files wraps ErrNotFound.
func (c *Client) Import(ctx context.Context, node string) (ImportResult, error) {
	var res ImportResult
	path := "/v1/import"
	if node != "" {
		path += "?node=" + url.QueryEscape(node)
	}
	err := c.getJSON(ctx, http.MethodGet, path, nil, &res)
	return res, err
}
