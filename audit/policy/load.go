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
		return nil, Errors{syntaxError(name, err)}
	}
	idx := indexNodes(&root)
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, decodeErrors(name, te, idx)
		}
		return nil, Errors{syntaxError(name, err)}
	}
	cfg.File = name
	applyDefaults(&cfg)
	resolvePaths(&cfg, filepath.Dir(name))
	if errs := validate(&cfg, name, idx); len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return nil, errs
	}
	return &cfg, nil
}

var lineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func syntaxError(file string, err error) *Error {
	msg := err.Error()
	if m := lineRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: n, Msg: "malformed YAML: " + m[2]}
	}
	return &Error{File: file, Msg: "malformed YAML: " + strings.TrimPrefix(msg, "yaml: ")}
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
			parent := key[:max(0, strings.LastIndex(key, "."))]
			known := knownKeys(parent)
			msg = fmt.Sprintf("unknown key %q", u[1])
			if s := suggest(u[1], known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else if len(known) > 0 {
				msg += " (known keys: " + strings.Join(known, ", ") + ")"
			}
			out = append(out, &Error{File: file, Line: line, Key: key, Msg: msg})
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
	return ""
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
	for i := range c.Targets {
		t := &c.Targets[i]
		abs(&t.Snapshot.Local.DataDir)
		abs(&t.Snapshot.Local.Repository)
		abs(&t.Restore.Local.BinDir)
		abs(&t.Restore.Local.ScratchDir)
	}
}
