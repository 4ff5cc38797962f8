package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"halb/appliance/certs"
)

// The certificate requests of the control API (docs/tls.md):
//
//	GET    /v1/certs         the stored certificates, each with what uses it
//	POST   /v1/certs         add one ({"name", "cert", "key", "replace"}; 400 + why when invalid)
//	DELETE /v1/certs/{name}  remove one (409 while a service uses it)
//
// No request returns a key.

// Options are what the API serves beside the Daemon.
type Options struct {
	// Certs is the certificate store of /v1/certs; nil: those requests
	// answer 403 (not enabled).
	Certs *certs.Store
	// CertUsers names what uses the stored certificate name, e.g.
	// ["service web"]; nil: nothing does.
	CertUsers func(name string) []string
	// CertsChanged is called after a certificate was added, replaced or
	// removed (the proxy loads them again); nil: nothing is told.
	CertsChanged func()
	// ImportDir holds the keepalived.conf and haproxy.cfg of GET
	// /v1/import; "": that request answers 404.
	ImportDir string
}

// CertInfo describes a stored certificate (never its key) and what uses
// it.
type CertInfo struct {
	certs.Info
	// InUseBy names what uses it, e.g. ["service web"].
	InUseBy []string `json:"in_use_by"`
}

// CertList answers GET /v1/certs.
type CertList struct {
	Certs []CertInfo `json:"certs"`
}

// CertAddRequest is the body of POST /v1/certs.
type CertAddRequest struct {
	Name string `json:"name"`
	// Cert is the PEM chain, leaf first; Key its PEM private key.
	Cert string `json:"cert"`
	Key  string `json:"key"`
	// Replace lets an existing name be replaced; without it that is 409.
	Replace bool `json:"replace,omitempty"`
}

// maxCertBody bounds POST /v1/certs: a long chain and its key, as JSON.
const maxCertBody = 256 << 10

func (s *Server) certRoutes() {
	s.mux.HandleFunc("GET /v1/certs", s.listCerts)
	s.mux.HandleFunc("POST /v1/certs", s.addCert)
	s.mux.HandleFunc("DELETE /v1/certs/{name}", s.removeCert)
}

// certStore returns the store, or answers 403 when there is none.
func (s *Server) certStore(w http.ResponseWriter) *certs.Store {
	if s.opts.Certs == nil {
		writeError(w, http.StatusForbidden, errors.New("this daemon keeps no certificates"))
	}
	return s.opts.Certs
}

func (s *Server) certUsers(name string) []string {
	if s.opts.CertUsers == nil {
		return []string{}
	}
	if u := s.opts.CertUsers(name); u != nil {
		return u
	}
	return []string{}
}

func (s *Server) certsChanged() {
	if s.opts.CertsChanged != nil {
		s.opts.CertsChanged()
	}
}

func (s *Server) listCerts(w http.ResponseWriter, r *http.Request) {
	st := s.certStore(w)
	if st == nil {
		return
	}
	l, err := st.List(time.Now())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	out := CertList{Certs: make([]CertInfo, 0, len(l))}
	for _, i := range l {
		out.Certs = append(out.Certs, CertInfo{Info: i, InUseBy: s.certUsers(i.Name)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) addCert(w http.ResponseWriter, r *http.Request) {
	st := s.certStore(w)
	if st == nil {
		return
	}
	var req CertAddRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCertBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf(`body: want {"name": "NAME", "cert": "PEM", "key": "PEM", "replace": false}: %w`, err))
		return
	}
	s.certMu.Lock()
	info, err := st.Add(req.Name, []byte(req.Cert), []byte(req.Key), time.Now(), req.Replace)
	s.certMu.Unlock()
	if err != nil {
		writeCertError(w, err)
		return
	}
	s.log.Info("certificate added", "name", info.Name, "subject", info.Subject, "sha256", info.Fingerprint, "replace", req.Replace)
	s.certsChanged()
	writeJSON(w, http.StatusOK, CertInfo{Info: info, InUseBy: s.certUsers(info.Name)})
}

func (s *Server) removeCert(w http.ResponseWriter, r *http.Request) {
	st := s.certStore(w)
	if st == nil {
		return
	}
	name := r.PathValue("name")
	s.certMu.Lock()
	users := s.certUsers(name)
	var err error
	if len(users) == 0 {
		err = st.Remove(name)
	}
	s.certMu.Unlock()
	if len(users) > 0 {
		writeError(w, http.StatusConflict, fmt.Errorf("certificate %q is in use by %s", name, strings.Join(users, ", ")))
		return
	}
	if err != nil {
		writeCertError(w, err)
		return
	}
	s.log.Info("certificate removed", "name", name)
	s.certsChanged()
	w.WriteHeader(http.StatusNoContent)
}

// writeCertError answers an error of the certificate store.
func writeCertError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, certs.ErrInvalid):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, certs.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, certs.ErrExists):
		writeError(w, http.StatusConflict, err)
	default:
		writeError(w, http.StatusInternalServerError, err)
	}
}

// CertList lists the stored certificates.
func (c *Client) CertList(ctx context.Context) ([]CertInfo, error) {
	var l CertList
	err := c.getJSON(ctx, http.MethodGet, "/v1/certs", nil, &l)
	return l.Certs, err
}

// CertAdd stores a certificate chain (PEM, leaf first) and its key as
// name; replace lets it take the place of one stored as name. An invalid
// pair is an error matching ErrInvalid that says why.
func (c *Client) CertAdd(ctx context.Context, name string, cert, key []byte, replace bool) (CertInfo, error) {
	b, _ := json.Marshal(CertAddRequest{Name: name, Cert: string(cert), Key: string(key), Replace: replace})
	var res CertInfo
	err := c.getJSON(ctx, http.MethodPost, "/v1/certs", b, &res)
	return res, err
}

// CertRemove removes the certificate stored as name; one in use is
// refused (409), an unknown name matches ErrNotFound.
func (c *Client) CertRemove(ctx context.Context, name string) error {
	return c.noContent(ctx, http.MethodDelete, "/v1/certs/"+url.PathEscape(name), nil)
}
