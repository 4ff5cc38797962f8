package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"halb/appliance/certs"
	"halb/appliance/certs/certstest"
)

// TestCertRequests: certificates are added, listed with their users,
// refused with Parse's reason, and removed unless in use; the hook hears
// every change and no answer holds a key.
func TestCertRequests(t *testing.T) {
	root := certstest.Root(t, "Example Root")
	web := root.Leaf(t, certstest.Options{CN: "www.example.com", DNS: []string{"www.example.com"}})
	other := root.Leaf(t, certstest.Options{CN: "api.example.com", DNS: []string{"api.example.com"}})
	var mu sync.Mutex
	changed := 0
	store := &certs.Store{Dir: t.TempDir() + "/certs"}
	_, c, _ := serveWith(t, Options{
		Certs: store,
		CertUsers: func(name string) []string {
			if name == "web" {
				return []string{"service web", "service web-tls"}
			}
			return nil
		},
		CertsChanged: func() { mu.Lock(); changed++; mu.Unlock() },
	})
	changes := func() int { mu.Lock(); defer mu.Unlock(); return changed }
	ctx := context.Background()

	if l, err := c.CertList(ctx); err != nil || len(l) != 0 {
		t.Fatalf("CertList of an empty store = %v, %v", l, err)
	}
	info, err := c.CertAdd(ctx, "web", certstest.Cat(web.CertPEM, root.PEM), web.KeyPEM, false)
	if err != nil || info.Name != "web" || info.Subject != "CN=www.example.com,O=halb test" || info.Chain != 2 ||
		strings.Join(info.InUseBy, ",") != "service web,service web-tls" {
		t.Fatalf("CertAdd = %+v, %v", info, err)
	}
	if changes() != 1 {
		t.Errorf("CertsChanged called %d times after an add, want 1", changes())
	}
	_, err = c.CertAdd(ctx, "web", certstest.Cat(web.CertPEM, root.PEM), web.KeyPEM, false)
	if se := (*StatusError)(nil); !errors.As(err, &se) || se.Code != http.StatusConflict || !strings.Contains(se.Msg, `certificate "web" exists`) {
		t.Errorf("CertAdd of an existing name: %v, want 409", err)
	}
	_, err = c.CertAdd(ctx, "api", certstest.Cat(other.CertPEM, root.PEM), web.KeyPEM, false)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "the key does not match certificate 1 (CN=api.example.com,O=halb test)") {
		t.Errorf("CertAdd of a mismatched pair: %v, want 400 saying why", err)
	}
	if _, err := c.CertAdd(ctx, "Bad Name", web.CertPEM, web.KeyPEM, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("CertAdd with a bad name: %v, want 400", err)
	}
	if changes() != 1 {
		t.Errorf("CertsChanged called after refused adds: %d", changes())
	}
	if _, err := c.CertAdd(ctx, "api", certstest.Cat(other.CertPEM, root.PEM), other.KeyPEM, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CertAdd(ctx, "api", certstest.Cat(other.CertPEM, root.PEM), other.KeyPEM, true); err != nil {
		t.Fatalf("replace: %v", err)
	}

	l, err := c.CertList(ctx)
	if err != nil || len(l) != 2 || l[0].Name != "api" || len(l[0].InUseBy) != 0 || l[1].Name != "web" || len(l[1].InUseBy) != 2 {
		t.Fatalf("CertList = %+v, %v", l, err)
	}

	err = c.CertRemove(ctx, "web")
	if se := (*StatusError)(nil); !errors.As(err, &se) || se.Code != http.StatusConflict || se.Msg != `certificate "web" is in use by service web, service web-tls` {
		t.Errorf("CertRemove in use: %v, want 409 naming the services", err)
	}
	if err := c.CertRemove(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("CertRemove unknown: %v, want 404", err)
	}
	if err := c.CertRemove(ctx, "api"); err != nil {
		t.Fatal(err)
	}
	if changes() != 4 {
		t.Errorf("CertsChanged called %d times, want 4 (add, add, replace, remove)", changes())
	}

	// No answer holds the key, in any form.
	for _, path := range []string{"/v1/certs"} {
		code, body := rawRequest(t, c, "GET", path, "")
		if code != 200 || strings.Contains(body, "PRIVATE KEY") || strings.Contains(body, `"key"`) {
			t.Errorf("GET %s: %d\n%s", path, code, body)
		}
		var cl CertList
		if err := json.Unmarshal([]byte(body), &cl); err != nil || len(cl.Certs) != 1 || cl.Certs[0].Fingerprint == "" {
			t.Errorf("GET %s: %s (%v)", path, body, err)
		}
	}
	if code, body := rawRequest(t, c, "POST", "/v1/certs", `{"name": "x", "crt": "y"}`); code != 400 || !strings.Contains(body, `unknown field \"crt\"`) {
		t.Errorf("POST with an unknown field: %d %s", code, body)
	}
}

// TestCertRequestsWithoutStore: a server given no store refuses the
// certificate requests plainly.
func TestCertRequestsWithoutStore(t *testing.T) {
	_, c, _ := serve(t)
	if _, err := c.CertList(context.Background()); !errors.Is(err, ErrNotEnabled) || !strings.Contains(err.Error(), "keeps no certificates") {
		t.Errorf("CertList without a store: %v", err)
	}
}
