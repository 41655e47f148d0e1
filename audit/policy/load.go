package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid is wrapped by every configuration error: unreadable, malformed or invalid.
var ErrInvalid = errors.New("invalid configuration")

// Error is one problem in a configuration file, at a line, about a key.
type Error struct {
	File string
	Line int
	Key  string
	Msg  string

	// suggested is the key path an unknown key was probably meant to be.
	suggested string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Unwrap() error { return ErrInvalid }

// Errors is every problem found in one file, in line order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) and errors.As(err, **Error) hold.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Load reads, decodes strictly, defaults and validates a configuration file. Relative paths in
// it are relative to the file's directory.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		hint := ""
		if errors.Is(err, os.ErrNotExist) {
			hint = " (pass --config FILE, or create firedrill.yaml: see the README's configuration reference)"
		}
		return nil, &Error{File: path, Msg: "cannot read the configuration: " + err.Error() + hint}
	}
	return Parse(path, b)
}

// Parse decodes a configuration held in memory; name is used in errors and to resolve paths.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{syntaxError(name, data, err)}
	}
	idx := indexNodes(&root)
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// A type error (a wrong type, an unknown key, a bad duration) leaves its field unset and
	// decoding goes on: the rest is still validated, so that every problem is reported at once.
	var decErrs Errors
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, Errors{syntaxError(name, data, err)}
		}
		decErrs = decodeErrors(name, te, idx)
		if !partial(decErrs) {
			// Whole mappings or list items were dropped: what is left would be validated
			// under the wrong keys and lines.
			return nil, decErrs
		}
	}
	cfg.File = name
	applyDefaults(&cfg)
	resolvePaths(&cfg, filepath.Dir(name))
	errs := append(decErrs, consequences(decErrs, validate(&cfg, name, idx))...)
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return nil, errs
	}
	return &cfg, nil
}

// partial reports whether decoding left only single fields unset, so that the rest of the
// configuration can be validated as it stands. A key given twice drops its whole mapping, and a
// list item of the wrong kind (a scalar where a target should be) is dropped from its list,
// shifting the items after it.
func partial(decErrs Errors) bool {
	for _, e := range decErrs {
		if strings.HasPrefix(e.Msg, "mapping key ") && strings.Contains(e.Msg, " already defined at line ") {
			return false
		}
		if e.Key == "" || strings.HasSuffix(e.Key, "]") {
			return false
		}
	}
	return true
}

// consequences drops the validation errors a decode error already explains: a field that could
// not be decoded is unset ("name: required" after "name: expected a string"), and a mistyped
// key leaves the key it was meant to be unset ("dataDri" for dataDir) and its parent incomplete.
func consequences(decErrs, valErrs Errors) Errors {
	if len(decErrs) == 0 {
		return valErrs
	}
	explained := map[string]bool{}
	for _, e := range decErrs {
		explained[e.Key] = true
		if e.suggested != "" {
			explained[e.suggested] = true
			explained[parentKey(e.Key)] = true
		}
	}
	var out Errors
	for _, e := range valErrs {
		if !explained[e.Key] {
			out = append(out, e)
		}
	}
	return out
}

func parentKey(key string) string { return key[:max(0, strings.LastIndex(key, "."))] }

var lineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// syntaxError places a YAML syntax error on the line where the problem is. yaml's "line N" is
// the line where the construct the problem breaks began (a tab that breaks a block is reported
// on the block's first line), or one line early; so the error's line is the first line at
// which the document, cut there, fails with the same message.
func syntaxError(file string, data []byte, err error) *Error {
	msg := err.Error()
	from := 1
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		from, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &Error{File: file, Line: failingLine(data, msg, from), Msg: "malformed YAML: " + msg}
}

// maxSyntaxSearch bounds the search for a syntax error's line (each step parses a prefix).
const maxSyntaxSearch = 5000

// failingLine returns the first line n >= from such that the first n lines fail to parse with
// msg, or 0 when none does.
func failingLine(data []byte, msg string, from int) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	for n := max(from, 1); n <= len(lines) && n < from+maxSyntaxSearch; n++ {
		var node yaml.Node
		err := yaml.Unmarshal(bytes.Join(lines[:n], nil), &node)
		if err == nil {
			continue
		}
		got := strings.TrimPrefix(err.Error(), "yaml: ")
		if m := lineRe.FindStringSubmatch(err.Error()); m != nil {
			got = m[2]
		}
		if got == msg {
			return n
		}
	}
	return 0
}

var unknownFieldRe = regexp.MustCompile(`^field (\S+) not found in type \S+$`)

// decodeErrors turns yaml's "line N: ..." messages into file:line: key: message errors.
func decodeErrors(file string, te *yaml.TypeError, idx *nodeIndex) Errors {
	var out Errors
	for _, raw := range te.Errors {
		m := lineRe.FindStringSubmatch(raw)
		if m == nil {
			out = append(out, &Error{File: file, Msg: raw})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		msg := m[2]
		if u := unknownFieldRe.FindStringSubmatch(msg); u != nil {
			key := idx.keyAt(line, u[1])
			parent := parentKey(key)
			known := knownKeys(parent)
			msg = fmt.Sprintf("unknown key %q", u[1])
			e := &Error{File: file, Line: line, Key: key}
			if s := suggest(u[1], known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
				e.suggested = s
				if parent != "" {
					e.suggested = parent + "." + s
				}
			} else if len(known) > 0 {
				msg += " (known keys: " + strings.Join(known, ", ") + ")"
			}
			e.Msg = msg
			out = append(out, e)
			continue
		}
		msg = strings.Replace(msg, "cannot unmarshal !!", "expected a different type: got !!", 1)
		out = append(out, &Error{File: file, Line: line, Key: idx.valueAt(line), Msg: msg})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out
}

// nodeIndex maps dotted key paths (targets[0].snapshot.mode) to lines and back.
type nodeIndex struct {
	line map[string]int
	byLn map[int][]string
}

func indexNodes(root *yaml.Node) *nodeIndex {
	idx := &nodeIndex{line: map[string]int{}, byLn: map[int][]string{}}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				idx.line[p] = k.Line
				idx.byLn[k.Line] = append(idx.byLn[k.Line], p)
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				idx.line[p] = c.Line
				walk(c, p)
			}
		}
	}
	walk(root, "")
	return idx
}

// lineOf returns the line of a key path, or of its nearest ancestor present in the file.
func (x *nodeIndex) lineOf(path string) int {
	for p := path; p != ""; {
		if l, ok := x.line[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

func (x *nodeIndex) keyAt(line int, name string) string {
	for _, p := range x.byLn[line] {
		if p == name || strings.HasSuffix(p, "."+name) {
			return p
		}
	}
	return name
}

func (x *nodeIndex) valueAt(line int) string {
	if ps := x.byLn[line]; len(ps) > 0 {
		return ps[len(ps)-1]
	}
	// A list item that is not a mapping ("- x" where a target should be) has no key of its own.
	item := ""
	for p, l := range x.line {
		if l == line && strings.HasSuffix(p, "]") && len(p) > len(item) {
			item = p
		}
	}
	return item
}

var indexRe = regexp.MustCompile(`\[\d+\]`)

// knownKeys lists the YAML keys accepted under a dotted path, from the Config type itself.
func knownKeys(path string) []string {
	t := reflect.TypeOf(Config{})
	if path != "" {
		for _, seg := range strings.Split(indexRe.ReplaceAllString(path, ""), ".") {
			t = deref(t)
			for t.Kind() == reflect.Slice {
				t = deref(t.Elem())
			}
			if t.Kind() != reflect.Struct {
				return nil
			}
			found := false
			for i := 0; i < t.NumField(); i++ {
				if tagName(t.Field(i)) == seg {
					t, found = t.Field(i).Type, true
					break
				}
			}
			if !found {
				return nil
			}
		}
	}
	t = deref(t)
	for t.Kind() == reflect.Slice {
		t = deref(t.Elem())
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if n := tagName(t.Field(i)); n != "" && n != "-" {
			keys = append(keys, n)
		}
	}
	return keys
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func tagName(f reflect.StructField) string {
	n, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return n
}

// suggest returns the known key closest to a mistyped one, if it is close.
func suggest(got string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if strings.EqualFold(k, got) {
			return k
		}
		if d := editDistance(strings.ToLower(k), strings.ToLower(got)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func resolvePaths(c *Config, base string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	abs(&c.History.Dir)
	abs(&c.History.EvidenceDir)
	abs(&c.History.SigningKey)
	abs(&c.Serve.TokenFile)
	abs(&c.Serve.TLS.CertFile)
	abs(&c.Serve.TLS.KeyFile)
	for i := range c.Targets {
		t := &c.Targets[i]
		abs(&t.Snapshot.Local.DataDir)
		abs(&t.Snapshot.Local.Repository)
		abs(&t.Restore.Local.BinDir)
		abs(&t.Restore.Source.Dir)
		abs(&t.Restore.Source.Archive)
		abs(&t.Restore.Source.Config)
		abs(&t.Restore.Source.RepoPath)
		abs(&t.Restore.Local.ScratchDir)
		abs(&t.Restore.Kubernetes.Kubeconfig)
		abs(&t.Snapshot.CSI.Kubeconfig)
		if cn := t.Checks.Canary; cn != nil {
			abs(&cn.EqualsFile)
		}
	}
}
