package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"halb/appliance/config"
)

// TestObserveHash: the hash is a bcrypt hash of the password typed twice,
// which the config accepts; two different entries are refused.
func TestObserveHash(t *testing.T) {
	defer func(r io.Reader) { stdin = r }(stdin)
	stdin = strings.NewReader("s3cret\ns3cret\n")
	var out, errOut bytes.Buffer
	if code := run([]string{"-socket", "/nonexistent", "observe", "hash"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	h := strings.TrimSpace(out.String())
	if !config.ValidBcrypt(h) || bcrypt.CompareHashAndPassword([]byte(h), []byte("s3cret")) != nil {
		t.Fatalf("%q is not a bcrypt hash of the password", h)
	}
	stdin = strings.NewReader("a\nb\n")
	out.Reset()
	if code := run([]string{"observe", "hash"}, &out, &errOut); code != 1 || out.Len() != 0 {
		t.Fatalf("differing passwords: exit %d, printed %q", code, out.String())
	}
}

// TestStatusObserve: the listener and each log target in the status table.
func TestStatusObserve(t *testing.T) {
	raw := json.RawMessage(`{"listener":{"listen":":8404","listening":"[::]:8404","served":306,"refused":{"vip":1,"auth":2}},
		"logs":[{"name":"central","to":"syslog","where":"udp://10.0.0.9:514","streams":["access","daemon"],"written":2051,"dropped":0},
		{"name":"f","to":"file","where":"/var/log/halb/access.log","streams":["access"],"written":5,"dropped":3,"failing":true,"last_error":"disk full"}]}`)
	var b bytes.Buffer
	printObserve(&b, raw)
	for _, want := range []string{"observe\t[::]:8404\t/metrics /stats: 306 requests served, 2 refused (auth), 1 refused (vip)",
		"log central\tudp://10.0.0.9:514 (access, daemon)\t2051 lines, 0 dropped",
		"log f\t/var/log/halb/access.log (access)\t5 lines, 3 dropped, FAILING: disk full"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
}
