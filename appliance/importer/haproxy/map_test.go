package haproxy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"halb/appliance/config"
	"halb/appliance/importer/source"
)

// imp imports cfg and returns the builder.
func imp(t *testing.T, cfg string) *source.Builder {
	t.Helper()
	p := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	b := source.NewBuilder()
	if err := Import(p, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// valid checks b's config against halb's validation.
func valid(t *testing.T, b *source.Builder) {
	t.Helper()
	c := *b.Config
	c.Node.Name = "lb1"
	raw, err := config.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse("halb.yaml", raw); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
}

// finding returns the findings whose directive starts with prefix, as
// "kind: why".
func findings(b *source.Builder, prefix string) []string {
	var out []string
	for _, f := range b.Report.Findings {
		if strings.HasPrefix(f.Directive, prefix) {
			out = append(out, f.Kind.String()+": "+f.Why)
		}
	}
	return out
}

func hasFinding(t *testing.T, b *source.Builder, prefix string, k source.Kind, why string) {
	t.Helper()
	for _, f := range findings(b, prefix) {
		if strings.HasPrefix(f, k.String()+": ") && strings.Contains(f, why) {
			return
		}
	}
	t.Errorf("no %s finding on %q saying %q; have %q\n%s", k, prefix, why, findings(b, prefix), b.Report)
}

func routes(s config.Service) string {
	var out []string
	for _, r := range s.Routes {
		m := r.Host + r.PathPrefix
		if r.Path != "" {
			m += "=" + r.Path
		}
		out = append(out, m+">"+r.Backend)
	}
	return strings.Join(out, " ") + " default>" + s.DefaultBackend
}

const backends = `
backend a
  server s 10.0.0.1:80
backend b
  server s 10.0.0.2:80
backend d
  server s 10.0.0.3:80
`

func TestRoutes(t *testing.T) {
	for _, tc := range []struct {
		name, rules, want string
		dropped           string // a rule that must be dropped
	}{
		{"host and path", `
  acl h hdr(host) -i www.example.com
  acl p path_beg /api/ /v1/
  use_backend a if h p
  default_backend d`, "www.example.com/api/>a www.example.com/v1/>a default>d", ""},
		{"or", `
  use_backend a if { hdr(host) -i x.example.com } || { path /exact }
  use_backend b if { path_beg /b }
  default_backend d`, "x.example.com>a =/exact>a /b>b default>d", ""},
		{"negation goes where the later rules send it", `
  acl api path_beg /api
  acl internal hdr(host) -i internal.example.com
  use_backend a if api !internal
  use_backend b if internal
  default_backend d`, "internal.example.com/api>b /api>a internal.example.com>b default>d", ""},
		{"negation falls to the default", `
  use_backend a if { path_beg /api } !{ path_beg /api/private }
  default_backend d`, "/api/private>d /api>a default>d", ""},
		{"unless", `
  use_backend a unless { path_beg /static }
  default_backend d`, "/static>d >a default>d", ""},
		{"unless or", `
  use_backend a unless { path_beg /s } || { path_beg /t }
  default_backend d`, "/s>d /t>d >a default>d", ""},
		{"hdr_end with a dot: the names under the domain, not the domain", `
  use_backend a if { hdr_end(host) -i .example.com }
  default_backend d`, "example.com>d .example.com>a default>d", ""},
		{"a rule never matching within a negation", `
  use_backend a if { path_beg /x } !{ path_beg / }
  default_backend d`, " default>d", ""},
		{"unreachable route left out", `
  use_backend a if { path_beg /x }
  use_backend b if { path_beg /x/y }
  default_backend d`, "/x>a default>d", ""},
		{"other fetches drop the rule", `
  use_backend a if { src 10.0.0.0/8 }
  use_backend b if { path_beg /b }
  default_backend d`, "/b>b default>d", "use_backend a"},
		{"negation without a default backend", `
  use_backend a if { path_beg /a } !{ path_beg /a/b }
  use_backend b if { path_beg /b }`, "/b>b default>", "use_backend a"},
		{"an undefined ACL", `
  use_backend a if nosuch
  default_backend d`, " default>d", "use_backend a"},
		{"case-sensitive host without -i", `
  acl h hdr(host) WWW.example.com
  use_backend a if h
  default_backend d`, "www.example.com>a default>d", ""},
		{"a dynamic backend", `
  use_backend %[req.hdr(host),lower]
  default_backend d`, " default>d", "use_backend %"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := imp(t, "defaults\n  mode http\nfrontend web\n  bind :80"+tc.rules+"\n"+backends)
			if len(b.Config.Services) != 1 {
				t.Fatalf("services %+v\n%s", b.Config.Services, b.Report)
			}
			if got := routes(b.Config.Services[0]); got != tc.want {
				t.Errorf("routes\n got %s\nwant %s\n%s", got, tc.want, b.Report)
			}
			if tc.dropped != "" {
				if fs := findings(b, tc.dropped); len(fs) == 0 || !strings.HasPrefix(fs[0], "dropped") {
					t.Errorf("%s not dropped: %q", tc.dropped, fs)
				}
			}
			if !strings.Contains(tc.want, ".example.com>") {
				valid(t, b)
			}
		})
	}
}

// TestVhostsCorpus checks the routes the vhosts corpus compiles to, rule
// by rule (see the comments in testdata/vhosts/haproxy.cfg).
func TestVhostsCorpus(t *testing.T) {
	b := source.NewBuilder()
	if err := Import("../testdata/vhosts/haproxy.cfg", b); err != nil {
		t.Fatal(err)
	}
	want := ".shop.example.com/api/>shop /api/>api .shop.example.com/v1/>shop /v1/>api .shop.example.com/v2/>shop /v2/>api " +
		"=/healthz>health .shop.example.com/admin>backoffice .shop.example.com>shop " +
		"static.example.com/old>legacy static.example.com>www .static.example.com>static blog.example.com/assets>static " +
		"/old>legacy blog.example.com>blog >www default>blog"
	if got := routes(b.Config.Services[0]); got != want {
		t.Errorf("routes\n got %s\nwant %s", got, want)
	}
	www := b.Config.Backends[0]
	if www.Sticky.Cookie != "SERVERID" || www.SlowStart != config.Duration(60e9) || !www.Servers[2].Disabled || !www.Servers[3].Backup || www.Servers[0].MaxConn != 200 {
		t.Errorf("backend www %+v", www)
	}
	if shop := b.Config.Backends[1]; !shop.AllBackups || *shop.Servers[0].Weight != 100 {
		t.Errorf("backend shop %+v", shop)
	}
	hasFinding(t, b, "server web2", source.Changed, "halb's cookie value is the server's name")
	hasFinding(t, b, "acl host_shop", source.Changed, "hdr_dom")
}

func TestHealth(t *testing.T) {
	for _, tc := range []struct {
		name, lines string
		want        config.Health
	}{
		{"httpchk alone: OPTIONS / and 2xx-3xx", "option httpchk\n  server s 10.0.0.1:80 check",
			config.Health{Check: "http", Method: "OPTIONS", Path: "/", ExpectStatus: config.StatusCodes{{Lo: 200, Hi: 399}}, Interval: 2e9, Timeout: 2e9, Rise: 2, Fall: 3, Observe: "none"}},
		{"httpchk uri", "option httpchk /h\n  http-check expect status 200\n  server s 10.0.0.1:80 check inter 5s rise 1 fall 4 port 8080",
			config.Health{Check: "http", Method: "OPTIONS", Path: "/h", ExpectStatus: config.StatusCodes{{Lo: 200, Hi: 200}}, Interval: 5e9, Timeout: 5e9, Rise: 1, Fall: 4, Port: 8080, Observe: "none"}},
		{"http-check send", "option httpchk\n  http-check send meth GET uri /s hdr Host a.example.com\n  http-check expect string ok\n  server s 10.0.0.1:80 check observe layer7",
			config.Health{Check: "http", Method: "GET", Path: "/s", Host: "a.example.com", ExpectBody: "ok", ExpectStatus: config.StatusCodes{{Lo: 200, Hi: 399}}, Interval: 2e9, Timeout: 2e9, Rise: 2, Fall: 3, Observe: "layer7"}},
		{"redis-check", "option redis-check\n  server s 10.0.0.1:6379 check",
			config.Health{Check: "tcp", Send: "PING\r\n", Expect: "+PONG", Interval: 2e9, Timeout: 2e9, Rise: 2, Fall: 3, Observe: "none"}},
		{"tcp-check", "option tcp-check\n  tcp-check connect port 9000\n  tcp-check send-binary 50494e470d0a\n  tcp-check expect string +PONG\n  timeout check 1s\n  timeout connect 500ms\n  server s 10.0.0.1:6379 check",
			config.Health{Check: "tcp", Port: 9000, Send: "PING\r\n", Expect: "+PONG", Interval: 2e9, Timeout: 15e8, Rise: 2, Fall: 3, Observe: "none"}},
		{"mysql-check", "option mysql-check user haproxy\n  server s 10.0.0.1:3306 check",
			config.Health{Check: "tcp", Interval: 2e9, Timeout: 2e9, Rise: 2, Fall: 3, Observe: "none"}},
		{"no check", "option httpchk\n  server s 10.0.0.1:80", config.Health{Check: "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := imp(t, "defaults\n  mode http\nlisten l\n  bind :80\n  "+tc.lines+"\n")
			got := b.Config.Backends[0].Health
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("health\n got %+v\nwant %+v\n%s", got, tc.want, b.Report)
			}
			valid(t, b)
		})
	}
}

func TestServers(t *testing.T) {
	b := imp(t, `
defaults
  mode tcp
frontend f
  bind 10.0.0.100:5432
  default_backend pg
backend pg
  default-server inter 3s fall 2
  server "pg 1" 10.0.0.1 check weight 256 maxconn 50 slowstart 10s send-proxy-v2
  server pg2 db2.example.com:5432 check inter 1s backup disabled slowstart 20s
  server pg3 10.0.0.3:5432 ssl verify none send-proxy
  server pg4 /var/run/pg.sock
  server pg5 10.0.0.5:5432 check resolvers dns init-addr none
`)
	be := b.Config.Backends[0]
	want := []config.Server{
		{Name: "pg_1", Address: "10.0.0.1:5432", MaxConn: 50},
		{Name: "pg2", Address: "db2.example.com:5432", Backup: true, Disabled: true},
		{Name: "pg3", Address: "10.0.0.3:5432"},
		{Name: "pg5", Address: "10.0.0.5:5432"},
	}
	if len(be.Servers) != len(want) {
		t.Fatalf("servers %+v", be.Servers)
	}
	for i, w := range want {
		s := be.Servers[i]
		s.Weight = nil
		if fmt.Sprint(s) != fmt.Sprint(w) {
			t.Errorf("server %d = %+v, want %+v", i, s, w)
		}
	}
	if *be.Servers[0].Weight != 256 || be.SlowStart != config.Duration(20e9) || be.ProxyProtocol != "v2" || be.TLS != nil {
		t.Errorf("backend %+v", be)
	}
	if be.Health.Interval != config.Duration(3e9) || be.Health.Fall != 2 {
		t.Errorf("health %+v: want default-server's inter 3s fall 2", be.Health)
	}
	hasFinding(t, b, `server "pg 1"`, source.Changed, "no port")
	hasFinding(t, b, `server "pg 1"`, source.Note, "server pg_1")
	hasFinding(t, b, "server pg2", source.Changed, "check settings are per backend")
	hasFinding(t, b, `server "pg 1"`, source.Changed, "slowstart is per backend")
	hasFinding(t, b, "server pg3", source.Changed, "proxy_protocol is per backend")
	hasFinding(t, b, "server pg3", source.Changed, "tls is per backend")
	hasFinding(t, b, "server pg4", source.Dropped, "unix socket")
	hasFinding(t, b, "server pg5", source.Dropped, "resolvers dns")
	hasFinding(t, b, "backend pg", source.Changed, "some servers have no check")
	valid(t, b)
}

func TestFrontends(t *testing.T) {
	b := imp(t, `
global
  crt-base /etc/haproxy/certs
  log 10.0.0.9 local3
  log-tag lb
defaults web
  mode http
  option forwardfor
  option httplog
  timeout client 20s
  timeout server 40s
  balance leastconn
  option allbackups
  maxconn 100
defaults
  mode http
frontend "site:80" from web
  bind :80
  bind :443 ssl crt site.pem crt /etc/ssl/other.pem ssl-min-ver TLSv1.3
  bind 10.0.0.10:8080 accept-proxy
  http-request redirect scheme https unless { ssl_fc }
  http-after-response set-header X-LB lb1
  http-response set-header X-R r
  http-request deny if { src 10.9.9.9 }
  default_backend app
frontend plain
  bind "${VIP}:80"
  bind 10.0.0.11:80
  default_backend app
backend app from web
  server a 10.0.0.1:8080
peers mypeers
  peer lb1 10.0.0.1:1024
`)
	svcs := b.Config.Services
	if len(svcs) != 3 {
		t.Fatalf("services %+v", svcs)
	}
	plain, tls, other := svcs[0], svcs[1], svcs[2]
	if plain.Name != "site_80" || tls.Name != "site_80-tls" || plain.HTTPSRedirect != 302 || tls.HTTPSRedirect != 0 {
		t.Errorf("services %s %s redirect %d %d", plain.Name, tls.Name, plain.HTTPSRedirect, tls.HTTPSRedirect)
	}
	if _, ok := plain.ResponseHeaders["X-R"]; ok || tls.ResponseHeaders["X-R"] != "r" || tls.ResponseHeaders["X-LB"] != "lb1" {
		t.Errorf("response headers: plain %v (a redirect got no http-response fields), tls %v", plain.ResponseHeaders, tls.ResponseHeaders)
	}
	if strings.Join(plain.Listen, ",") != ":80,10.0.0.10:8080" || strings.Join(plain.AcceptProxy, ",") != "0.0.0.0/0,::/0" {
		t.Errorf("plain %+v", plain)
	}
	if tls.TLS == nil || len(tls.TLS.Certificates) != 2 || tls.TLS.Certificates[0] != (config.TLSCertificate{Name: "site", Cert: "/etc/haproxy/certs/site.crt", Key: "/etc/haproxy/certs/site.key"}) || tls.TLS.MinVersion != "1.3" {
		t.Errorf("tls %+v", tls.TLS)
	}
	if plain.Timeouts.HTTPRequest != config.Duration(20e9) || plain.Timeouts.HTTPKeepAlive != config.Duration(20e9) {
		t.Errorf("timeouts %+v: want HAProxy's fallbacks to timeout client", plain.Timeouts)
	}
	if plain.Timeouts.Client != config.Duration(20e9) || plain.Timeouts.Server != config.Duration(40e9) || !plain.AccessLog || *plain.ForwardHeaders == nil || (*plain.ForwardHeaders)[0] != "x-forwarded-for" || plain.ResponseHeaders["X-LB"] != "lb1" {
		t.Errorf("plain %+v", plain)
	}
	if other.Name != "plain" || strings.Join(other.Listen, ",") != "10.0.0.11:80" || len(*other.ForwardHeaders) != 1 || other.AccessLog {
		t.Errorf("frontend plain %+v (the unnamed defaults has no httplog; its backend has forwardfor)", other)
	}
	be := b.Config.Backends[0]
	if be.Balance != "leastconn" || !be.AllBackups {
		t.Errorf("backend %+v: want the web defaults", be)
	}
	if l := b.Config.Observe.Logs; len(l) != 1 || l[0].Address != "10.0.0.9:514" || l[0].Facility != "local3" || l[0].Tag != "lb" {
		t.Errorf("logs %+v", l)
	}
	hasFinding(t, b, "bind :443", source.Changed, "two files")
	hasFinding(t, b, "bind 10.0.0.10:8080 accept-proxy", source.Changed, "accept-proxy applies to every listen address")
	hasFinding(t, b, `bind "${VIP}:80"`, source.Dropped, "${VIP}")
	hasFinding(t, b, "http-request deny", source.Dropped, "")
	hasFinding(t, b, "maxconn 100", source.Dropped, "per server")
	hasFinding(t, b, "peers mypeers", source.Dropped, "stick tables")
	valid(t, b)
}

func TestUnusedDefaults(t *testing.T) {
	p := filepath.Join(t.TempDir(), "h.cfg")
	os.WriteFile(p, []byte("defaults\n  balance leastconn\nfrontend f\n  mode http\n  bind :80\n  use_backend x if { path_beg /x }\n"), 0o644)
	b := source.NewBuilder()
	if err := Import(p, b); err != nil {
		t.Fatal(err)
	}
	hasFinding(t, b, "balance leastconn", source.Dropped, "no frontend, backend or listen")
	hasFinding(t, b, "use_backend x", source.Dropped, "no backend x")
	hasFinding(t, b, "frontend f", source.Dropped, "no backend to send requests to")
}

func TestSticky(t *testing.T) {
	b := imp(t, `
defaults
  mode http
listen app
  bind :80
  stick-table type ip size 1m peers lbs
  stick on src
  server a 10.0.0.1:80
listen cookie
  bind :81
  cookie JSESSIONID prefix
  server a 10.0.0.1:80 cookie a
`)
	s := b.Config.Backends[0].Sticky
	if !s.Source || s.Expire != config.Duration(24*3600e9) {
		t.Errorf("sticky %+v", s)
	}
	hasFinding(t, b, "stick-table", source.Changed, "no expire")
	hasFinding(t, b, "stick-table", source.Changed, "peers lbs")
	hasFinding(t, b, "cookie JSESSIONID prefix", source.Dropped, "rewrite or prefix")
	if b.Config.Backends[1].Sticky.Cookie != "" {
		t.Errorf("prefix cookie mapped")
	}
	valid(t, b)
}

// TestRulesBounded: many rules with negations compile in bounded work
// (each dropped beyond the bound, with a finding), not exponential time.
func TestRulesBounded(t *testing.T) {
	var cfg strings.Builder
	cfg.WriteString("defaults\n  mode http\nfrontend web\n  bind :80\n  default_backend d\n")
	for i := range 600 {
		fmt.Fprintf(&cfg, "  use_backend a if { path_beg /p%d } !{ path_beg /p%d/x } !{ path_beg /p%d/y }\n", i%7, i%5, i%3)
	}
	cfg.WriteString(backends)
	b := imp(t, cfg.String())
	if n := len(b.Config.Services[0].Routes); n == 0 || n > 256 {
		t.Errorf("%d routes", n)
	}
	if b.Report.Count(source.Dropped) == 0 {
		t.Errorf("no rule dropped")
	}
}

func TestSNIRoutes(t *testing.T) {
	b := imp(t, `
defaults
  mode tcp
frontend tls-pass
  bind 192.168.1.10:443
  tcp-request inspect-delay 5s
  tcp-request content accept if { req_ssl_hello_type 1 }
  acl app req_ssl_sni -i app.example.com
  use_backend a if app || { req.ssl_sni -i app2.example.com }
  use_backend b if { req.ssl_sni -m end .example.com }
  use_backend b if { req.ssl_sni -i app.example.com }
  use_backend b if { path_beg /x }
  default_backend d
`+backends)
	got := fmt.Sprint(b.Config.Services[0].SNIRoutes)
	if want := "[{app.example.com a} {app2.example.com a} {*.example.com b}]"; got != want {
		t.Errorf("sni_routes %s, want %s\n%s", got, want, b.Report)
	}
	hasFinding(t, b, "use_backend b if { req.ssl_sni -m end", source.Changed, "one label")
	hasFinding(t, b, "use_backend b if { path_beg", source.Dropped, "TLS server name only")
	hasFinding(t, b, "tcp-request content accept", source.Note, "")
	valid(t, b)
}

// TestEdgeValuesValidate: values halb's validation refuses are reported
// and left out (or clamped), so the import as a whole still validates.
func TestEdgeValuesValidate(t *testing.T) {
	b := imp(t, `
global
  crt-base certs
defaults
  mode http
  timeout client 0
frontend f
  bind :443 ssl crt site.pem
  acl q path /a?b
  use_backend x if q
  http-response set-header "Bad Name" v
  default_backend x
backend x
  option httpchk "GE T" /h
  server a web_1.example.com:80 check inter 0 rise 0
  server b 10.0.0.2:80 slowstart 2h sni str(bad_name)
  server c 10.1:80
  server d 10.0.0.4:80 maxconn -5
`)
	valid(t, b)
	crt := b.Config.Services[0].TLS.Certificates[0]
	if !strings.HasPrefix(crt.Cert, "/") || !strings.HasSuffix(crt.Cert, "/certs/site.crt") {
		t.Errorf("cert %+v", crt)
	}
	hasFinding(t, b, "bind :443", source.Changed, "is relative")
	hasFinding(t, b, "server a", source.Dropped, "web_1.example.com")
	hasFinding(t, b, "server a", source.Dropped, "inter must be positive")
	hasFinding(t, b, "server c", source.Dropped, "10.1")
	hasFinding(t, b, "timeout client 0", source.Dropped, "at least 1ms")
	hasFinding(t, b, "use_backend x if q", source.Dropped, "holds a ?")
	hasFinding(t, b, "backend x", source.Changed, "at most 1h")
}

func TestCertDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.example.com.pem", "a.example.com.pem", "README"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o600)
	}
	b := imp(t, "frontend f\n  mode http\n  bind :443 ssl crt "+dir+"/\n  default_backend x\nbackend x\n  server s 10.0.0.1:80\n")
	var got []string
	for _, c := range b.Config.Services[0].TLS.Certificates {
		got = append(got, c.Name+"="+strings.TrimPrefix(c.Cert, dir))
	}
	if strings.Join(got, " ") != "a.example.com=/a.example.com.crt b.example.com=/b.example.com.crt" {
		t.Errorf("certificates %q", got)
	}
	hasFinding(t, b, "bind :443", source.Changed, "a directory")
	valid(t, b)
}
