package haproxy

import (
	"fmt"
	"strings"

	"halb/appliance/config"
	"halb/appliance/importer/source"
)

// The routing part: HAProxy's ACLs on the Host header and the path,
// combined with juxtaposition (and), "||"/"or" and "!" in use_backend
// rules, become halb routes. A condition is brought to a disjunction of
// clauses, each a region (at most one host constraint and one path
// constraint, as a halb route) less some regions (the negated ACLs). The
// rules, first match wins, are compiled into routes: a clause R less N
// becomes first the routes that send R∩N where the later rules or the
// default would, then R itself.

type hostKind int

const (
	anyHost hostKind = iota
	exactHost
	domainHost // the domain and every name under it (halb's ".example.com")
)

type pathKind int

const (
	anyPath pathKind = iota
	exactPath
	prefixPath
)

// region is what one halb route matches.
type region struct {
	hk   hostKind
	host string
	pk   pathKind
	path string
}

// and intersects two regions; ok is false when they are disjoint.
func (a region) and(b region) (region, bool) {
	hk, host, ok1 := meet(int(a.hk), int(b.hk), a.host, b.host, underDomain)
	pk, path, ok2 := meet(int(a.pk), int(b.pk), a.path, b.path, strings.HasPrefix)
	return region{hk: hostKind(hk), host: host, pk: pathKind(pk), path: path}, ok1 && ok2
}

// meet intersects two constraints of a kind: 0 any, 1 exact, 2 broad (a
// domain, a prefix: the constants of hostKind and pathKind); within(x, y) says whether x is inside broad y.
func meet(ak, bk int, a, b string, within func(x, y string) bool) (int, string, bool) {
	switch {
	case bk == 0:
		return ak, a, true
	case ak == 0:
		return bk, b, true
	case ak == 1 && bk == 1:
		return ak, a, a == b
	case ak == 1:
		return ak, a, within(a, b)
	case bk == 1:
		return bk, b, within(b, a)
	case within(a, b): // both broad: the narrower, when one holds the other
		return ak, a, true
	case within(b, a):
		return bk, b, true
	}
	return ak, a, false
}

// covers reports whether every request in b is in a.
func (a region) covers(b region) bool {
	i, ok := a.and(b)
	return ok && i == b
}

// underDomain reports whether name is domain d or a name under it.
func underDomain(name, d string) bool {
	return name == d || strings.HasSuffix(name, "."+d)
}

func (a region) route(backend string) config.Route {
	r := config.Route{Backend: backend}
	switch a.hk {
	case exactHost:
		r.Host = a.host
	case domainHost:
		r.Host = "." + a.host
	}
	switch a.pk {
	case prefixPath:
		r.PathPrefix = a.path
	case exactPath:
		r.Path = a.path
	}
	return r
}

// atom is a region less some regions: one value of an ACL.
type atom struct {
	r      region
	except []region
}

// acl is a named (or anonymous) ACL: its values, ORed. Unsupported says
// why it cannot become a route condition.
type acl struct {
	atoms       []atom
	unsupported string
	pos         source.Pos
	sni         bool // tests the TLS server name (req.ssl_sni), for tcp mode
	constant    bool // TRUE or FALSE: fits either mode
}

// clause is a conjunction: a region less the negated regions.
type clause struct {
	r   region
	neg []region
}

// aclFinding is a remark on an ACL that does map (a Change or a Note).
type aclFinding struct {
	change bool
	why    string
}

// parseACL maps an ACL's fetch, flags and values (the words after the
// name of "acl NAME", or inside "{ }").
func parseACL(words []Word) (a acl, notes []aclFinding) {
	if len(words) == 0 {
		return acl{unsupported: "an ACL without a fetch"}, nil
	}
	a.pos = words[0].Pos
	fetch := strings.ToLower(words[0].Text)
	switch fetch {
	case "always_true", "true":
		return acl{atoms: []atom{{}}, pos: a.pos, constant: true}, nil
	case "always_false", "false":
		return acl{pos: a.pos, constant: true}, nil
	}
	lower := false
	if base, conv, ok := strings.Cut(fetch, ","); ok {
		if conv != "lower" {
			return acl{unsupported: fmt.Sprintf("the converter %q: halb routes on the Host header and the path as they are", conv)}, nil
		}
		fetch, lower = base, true
	}
	icase, method := lower, ""
	var values []string
	args := words[1:]
	for i := 0; i < len(args); i++ {
		w := args[i].Text
		if len(values) == 0 && strings.HasPrefix(w, "-") && w != "-" {
			switch w {
			case "-i":
				icase = true
			case "-m":
				if i+1 >= len(args) {
					return acl{unsupported: "-m without a match method"}, nil
				}
				i++
				method = args[i].Text
			case "-f", "-M":
				return acl{unsupported: "patterns from a file (" + w + "): the importer does not read them; write them as routes"}, nil
			case "-n":
			case "-u":
				i++
			case "--":
				for _, v := range args[i+1:] {
					values = append(values, v.Text)
				}
				i = len(args)
			default:
				return acl{unsupported: "the ACL flag " + w}, nil
			}
			continue
		}
		values = append(values, w)
	}
	// The fetch and its match method.
	var subject string // "host" or "path"
	m := method
	switch {
	case fetch == "path" || fetch == "path_beg" || fetch == "path_end" || fetch == "path_reg" || fetch == "path_sub" || fetch == "path_dir" || fetch == "path_dom" || fetch == "path_len":
		subject = "path"
		if s, ok := strings.CutPrefix(fetch, "path_"); ok && m == "" {
			m = s
		}
	case fetch == "req_ssl_sni" || fetch == "req.ssl_sni" || fetch == "ssl_fc_sni":
		subject, a.sni = "host", true
		if m != "" && m != "str" && m != "end" {
			return acl{unsupported: "matching the TLS server name by " + m + ": halb's sni_routes take a name or a *.suffix wildcard"}, nil
		}
	default:
		f := strings.TrimPrefix(fetch, "req.")
		name, arg, ok := strings.Cut(f, "(")
		arg = strings.TrimSuffix(arg, ")")
		hdr := name == "hdr" || strings.HasPrefix(name, "hdr_")
		if !ok || !hdr || !(strings.EqualFold(arg, "host") || strings.EqualFold(arg, "host,-1") || strings.EqualFold(arg, "host,1")) {
			return acl{unsupported: fmt.Sprintf("the fetch %s: halb routes by the Host header and the path only", words[0].Text)}, nil
		}
		subject = "host"
		if s, ok := strings.CutPrefix(name, "hdr_"); ok && m == "" {
			m = s
		}
	}
	if m == "" {
		m = "str"
	}
	if len(values) == 0 {
		return acl{unsupported: "an ACL without values (HAProxy's found test)"}, nil
	}
	for _, v := range values {
		var at atom
		switch subject {
		case "path":
			if icase {
				notes = append(notes, aclFinding{true, "-i: HAProxy matched the path in any case; halb matches it as written"})
			}
			if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "?# \t\r\n") {
				return acl{unsupported: fmt.Sprintf("the path %q does not start with / or holds a ?, # or white space", v)}, nil
			}
			switch m {
			case "str":
				at.r = region{pk: exactPath, path: v}
			case "beg":
				at.r = region{pk: prefixPath, path: v}
			case "dir":
				// path_dir /api: the path is /api, or /api/...
				p := strings.TrimSuffix(v, "/")
				if p == "" {
					at.r = region{}
				} else {
					a.atoms = append(a.atoms, atom{r: region{pk: exactPath, path: p}})
					at.r = region{pk: prefixPath, path: p + "/"}
				}
			default:
				return acl{unsupported: fmt.Sprintf("matching the path by %s: halb matches an exact path or a prefix", m)}, nil
			}
		case "host":
			h := strings.TrimSuffix(v, ".")
			if !icase && h != strings.ToLower(h) {
				notes = append(notes, aclFinding{true, "without -i HAProxy matched the host name in that case only; halb matches host names in any case"})
			}
			h = strings.ToLower(h)
			switch m {
			case "str":
				notes = append(notes, aclFinding{true, portNote(h)})
				at.r = region{hk: exactHost, host: h}
			case "dom":
				notes = append(notes, aclFinding{true, "hdr_dom matched " + h + " as dot-delimited words anywhere in the Host (" + h + ".other.net too); halb's \"." + h + "\" matches " + h + " and the names under it"})
				at.r = region{hk: domainHost, host: h}
			case "end":
				if d, ok := strings.CutPrefix(h, "."); ok {
					// every name under d, not d itself: exact as a domain less its apex
					h = d
					notes = append(notes, aclFinding{true, portNote("." + d)})
					at = atom{r: region{hk: domainHost, host: d}, except: []region{{hk: exactHost, host: d}}}
				} else {
					notes = append(notes, aclFinding{true, "hdr_end " + h + " matched any Host ending so (x" + h + " too); halb's \"." + h + "\" matches " + h + " and the names under it"})
					at.r = region{hk: domainHost, host: h}
				}
			case "beg":
				if !strings.Contains(h, ".") {
					return acl{unsupported: "hdr_beg " + v + ": halb matches host names exactly or by domain, not by their beginning"}, nil
				}
				notes = append(notes, aclFinding{true, "hdr_beg " + h + " matched any Host beginning so (" + h + ":8080 too); halb matches " + h + " exactly (any port)"})
				at.r = region{hk: exactHost, host: h}
			default:
				return acl{unsupported: fmt.Sprintf("matching the Host by %s: halb matches a host name exactly or by domain", m)}, nil
			}
			if strings.Contains(h, ":") {
				return acl{unsupported: fmt.Sprintf("the Host %q with a port: halb routes by the host name only", v)}, nil
			}
			if !validHost(h) {
				return acl{unsupported: fmt.Sprintf("%q is not a host name halb can route", v)}, nil
			}
		}
		a.atoms = append(a.atoms, at)
	}
	return a, notes
}

// portNote says how a Host with a port fares: HAProxy compared the whole
// header, halb compares the host name without the port.
func portNote(h string) string {
	return "HAProxy compared the whole Host header, so a request whose Host carries a port (" + strings.TrimPrefix(h, ".") +
		":8080) did not match " + h + "; halb compares the host name without its port"
}

// validHost checks a host name as halb's validation takes one (RFC 1123
// labels, the last not a number).
func validHost(h string) bool { return config.ValidDNSName(h) }

// maxClauses bounds the expansion of a condition, maxSteps the work of
// compiling a frontend's rules (negations nest: without a bound, a few
// rules could take exponential time).
const (
	maxClauses = 64
	maxSteps   = 5000
	maxRules   = 500
)

// condition parses the words after if/unless into clauses, looking ACLs up
// in acls (anonymous ones are parsed in place). unless negates the whole.
func condition(words []Word, unless, sni bool, acls map[string]*acl, note func(source.Pos, aclFinding)) ([]clause, string) {
	// terms: OR of ANDs of literals
	type lit struct {
		a   *acl
		neg bool
	}
	var terms [][]lit
	var cur []lit
	for i := 0; i < len(words); i++ {
		w := words[i].Text
		switch w {
		case "||", "or", "OR":
			terms = append(terms, cur)
			cur = nil
			continue
		}
		neg := false
		for strings.HasPrefix(w, "!") {
			neg = !neg
			w = w[1:]
		}
		if w == "" {
			if i+1 >= len(words) {
				return nil, "! at the end of the condition"
			}
			i++
			w = words[i].Text
			for strings.HasPrefix(w, "!") {
				neg = !neg
				w = w[1:]
			}
		}
		var a *acl
		if w == "{" {
			j := i + 1
			for j < len(words) && words[j].Text != "}" {
				j++
			}
			anon, notes := parseACL(words[i+1 : j])
			for _, n := range notes {
				note(words[i].Pos, n)
			}
			a = &anon
			i = j
		} else {
			var ok bool
			if a, ok = acls[w]; !ok {
				switch strings.ToUpper(w) {
				case "TRUE":
					a = &acl{atoms: []atom{{}}, constant: true}
				case "FALSE":
					a = &acl{constant: true}
				default:
					return nil, fmt.Sprintf("the ACL %q is not defined (or is one of HAProxy's predefined ACLs, which do not test the Host or the path)", w)
				}
			}
		}
		if a.unsupported != "" {
			return nil, a.unsupported
		}
		if a.sni != sni && !a.constant {
			if sni {
				return nil, "in tcp mode halb routes by the TLS server name only (sni_routes)"
			}
			return nil, "the TLS server name in http mode: halb routes http services by Host and path"
		}
		cur = append(cur, lit{a, neg})
	}
	terms = append(terms, cur)
	var out []clause
	for _, t := range terms {
		if len(t) == 0 {
			return nil, "an empty condition between or operators"
		}
		cs := []clause{{}}
		for _, l := range t {
			if l.neg {
				for _, at := range l.a.atoms {
					if len(at.except) > 0 {
						return nil, "a negated hdr_end with a leading dot (a domain less its apex) cannot be written as routes"
					}
				}
				for k := range cs {
					for _, at := range l.a.atoms {
						cs[k].neg = append(cs[k].neg, at.r)
					}
				}
				continue
			}
			var next []clause
			for _, c := range cs {
				for _, at := range l.a.atoms {
					r, ok := c.r.and(at.r)
					if !ok {
						continue
					}
					n := clause{r: r, neg: append(append([]region(nil), c.neg...), at.except...)}
					next = append(next, n)
				}
			}
			if len(next) > maxClauses {
				return nil, "the condition expands into too many routes"
			}
			cs = next
		}
		out = append(out, cs...)
	}
	if unless {
		return negate(out)
	}
	return out, ""
}

// negate turns "unless C" into clauses: possible when C is one clause of
// plain regions with nothing negated, or several such clauses of one
// region each (not (A or B) = not A and not B).
func negate(cs []clause) ([]clause, string) {
	c := clause{}
	for _, x := range cs {
		if len(x.neg) > 0 {
			return nil, "unless with a negation inside cannot be written as routes"
		}
		if x.r.hk != anyHost && x.r.pk != anyPath {
			// not (H and P) = not H or not P: a union of complements
			return nil, "unless on a host and a path together cannot be written as routes"
		}
		c.neg = append(c.neg, x.r)
	}
	return []clause{c}, ""
}

// rule is one use_backend rule, compiled.
type rule struct {
	backend string
	clauses []clause
}

// compile turns the rules (first match wins) and the default backend into
// routes over the whole request space.
func compile(rules []rule, def string) ([]config.Route, string) {
	type flat struct {
		backend string
		c       clause
	}
	var fl []flat
	for _, r := range rules {
		for _, c := range r.clauses {
			fl = append(fl, flat{r.backend, c})
		}
	}
	var out []region
	var backends []string
	emit := func(r region, b string) {
		for _, prev := range out {
			if prev.covers(r) {
				return // unreachable
			}
		}
		out = append(out, r)
		backends = append(backends, b)
	}
	steps := 0
	var walk func(k int, restrict region, depth int) string
	walk = func(k int, restrict region, depth int) string {
		if depth > 8 || len(out) > 256 {
			return "the negations nest too deep to be written as routes"
		}
		for j := k; j < len(fl); j++ {
			if steps++; steps > maxSteps {
				return "the rules expand into too many routes"
			}
			r, ok := restrict.and(fl[j].c.r)
			if !ok {
				continue
			}
			never := false
			for _, n := range fl[j].c.neg {
				rn, ok := r.and(n)
				if !ok {
					continue
				}
				if rn == r {
					never = true
					break
				}
				if def == "" {
					return "a negation needs a default_backend for the requests it excludes"
				}
				if why := walk(j+1, rn, depth+1); why != "" {
					return why
				}
			}
			if !never {
				emit(r, fl[j].backend)
			}
		}
		if depth > 0 {
			emit(restrict, def)
		}
		return ""
	}
	if why := walk(0, region{}, 0); why != "" {
		return nil, why
	}
	routes := make([]config.Route, 0, len(out))
	for i, r := range out {
		// trailing routes to the default backend that nothing after them
		// needs are the default itself
		routes = append(routes, r.route(backends[i]))
	}
	for len(routes) > 0 && routes[len(routes)-1].Backend == def && out[len(routes)-1] == (region{}) {
		routes = routes[:len(routes)-1]
	}
	return routes, ""
}
