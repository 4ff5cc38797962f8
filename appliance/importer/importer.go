// Package importer turns a node's keepalived.conf and haproxy.cfg into a halb
// config, with a report of every directive that has no exact halb
// equivalent. The parsers and mappings are in the keepalived and haproxy
// subpackages; this package runs them, names the node, checks the result
// against halb's own validation and renders it commented with where each
// part came from.
package importer

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"

	"halb/appliance/config"
	"halb/appliance/importer/haproxy"
	"halb/appliance/importer/keepalived"
	"halb/appliance/importer/source"
)

// Options name one node's files. Either may be empty (a node that runs only
// keepalived, or only HAProxy).
type Options struct {
	Keepalived string // path of keepalived.conf
	HAProxy    string // path of haproxy.cfg
	// NodeName is node.name; empty: keepalived's router_id when it is a
	// valid name, else "lb1".
	NodeName string
}

// Result is one node's imported config.
type Result struct {
	Config *config.Config
	Report *source.Report
	// YAML is the config as halb.yaml, commented with the origin of each
	// part; it passes config.Parse.
	YAML []byte
}

// Import reads and maps o's files. A parse error (a *source.Error naming
// file:line:column) or a result that halb's validation refuses is an error;
// directives that do not map are findings in the report.
func Import(o Options) (*Result, error) {
	if o.Keepalived == "" && o.HAProxy == "" {
		return nil, errors.New("import: nothing to import: give a keepalived.conf, a haproxy.cfg or both")
	}
	b := source.NewBuilder()
	// HAProxy first: keepalived's scripts that check HAProxy become
	// tracking of the services it made.
	if o.HAProxy != "" {
		if err := haproxy.Import(o.HAProxy, b); err != nil {
			return nil, err
		}
	}
	if o.Keepalived != "" {
		// keepalived's config id (-i) defaults to the host name's first
		// label: the node name decides its conditional (@id) lines.
		if err := keepalived.ImportAs(o.Keepalived, o.NodeName, b); err != nil {
			return nil, err
		}
	}
	switch {
	case o.NodeName != "":
		if !config.ValidNodeName(o.NodeName) {
			return nil, fmt.Errorf("import: node name %q is not a valid host name", o.NodeName)
		}
		b.Config.Node.Name = o.NodeName
	case b.Config.Node.Name != "" && config.ValidNodeName(b.Config.Node.Name):
	default:
		b.Config.Node.Name = "lb1"
	}
	b.Report.Sort()
	text, err := Render(b.Config, b.Origins)
	if err != nil {
		return nil, err
	}
	if _, err := config.Parse("halb.yaml", text); err != nil {
		return nil, fmt.Errorf("import: the result is not a valid halb config (a gap in the importer; please report it):\n%w", err)
	}
	return &Result{Config: b.Config, Report: b.Report, YAML: text}, nil
}

// Render writes c as halb.yaml with origins as comments above the parts
// they name (keys as in source.Builder.Origins).
func Render(c *config.Config, origins map[string]string) ([]byte, error) {
	raw, err := config.Marshal(c)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 1 {
		comment(doc.Content[0], "", origins)
	}
	doc.HeadComment = "halb.yaml written by halbctl import; check the import report before use"
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// comment walks n (at path) and sets the head comment of every sequence
// element and mapping value that origins names.
func comment(n *yaml.Node, path string, origins map[string]string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if o, ok := origins[p]; ok {
				k.HeadComment = o
			}
			comment(v, p, origins)
		}
	case yaml.SequenceNode:
		for i, e := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			if o, ok := origins[p]; ok {
				e.HeadComment = o
			}
			comment(e, p, origins)
		}
	}
}

var indexRE = regexp.MustCompile(`\[\d+\]`)

// Shape reduces a config path to its shape ("backends[].servers[]"), for
// tests and for the pair comparison.
func Shape(path string) string { return indexRE.ReplaceAllString(path, "[]") }

// ImportPair imports both nodes of a pair and checks that their shared
// parts (everything but the per-node keys: node, priority, unicast peers,
// ...) line up, as halb's peer sync needs: each difference is a Changed
// finding in both reports, since on pairing one node's shared part replaces
// the other's.
func ImportPair(a, b Options) (*Result, *Result, error) {
	ra, err := Import(a)
	if err != nil {
		return nil, nil, err
	}
	rb, err := Import(b)
	if err != nil {
		return nil, nil, err
	}
	if ra.Config.Node.Name == rb.Config.Node.Name {
		return nil, nil, fmt.Errorf("import: both nodes are named %q: give --node-name and --peer-node-name", ra.Config.Node.Name)
	}
	pos := source.Pos{File: ra.Config.Node.Name + "+" + rb.Config.Node.Name}
	for _, ch := range config.Diff(config.ClusterPart(ra.Config), config.ClusterPart(rb.Config)) {
		f := source.Finding{Pos: pos, Kind: source.Changed, Directive: "shared part differs: " + ch.String(),
			Why:     fmt.Sprintf("the nodes' configs differ here; once paired, halb keeps one shared part for both (%s's at pairing: `halbctl pair join` on %s)", ra.Config.Node.Name, rb.Config.Node.Name),
			Instead: "make both nodes' files agree before importing, or check that " + ra.Config.Node.Name + "'s version is the one to keep"}
		ra.Report.Findings = append(ra.Report.Findings, f)
		rb.Report.Findings = append(rb.Report.Findings, f)
	}
	return ra, rb, nil
}
