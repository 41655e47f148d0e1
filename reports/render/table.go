package render

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/pkg/twwarp"
	"github.com/olekukonko/tablewriter/pkg/twwidth"
	"github.com/olekukonko/tablewriter/tw"
)

// Every table firedrill prints goes through Fit. When the output's width is known (WithWidth)
// the table is fitted to it: columns are given widths here, and tablewriter lays the cells out
// in them (tw.CellWidth.PerColumn). tablewriter's own MaxWidth splits the width evenly between
// the columns, which would cut a status as readily as a long message, and it silently drops
// the end of a word wider than its column; so every cell is made to fit its column first.

// Shrink says how a column gives way when a table is wider than the output.
type Shrink int

const (
	// Wrap is free text: wrapped at spaces onto more lines, and a word wider than the column
	// (a path in a message) broken over lines, after a '/', '-', ':' or '.' where one is near.
	// Nothing is lost.
	Wrap Shrink = iota
	// Keep is never narrower than its widest value: statuses.
	Keep
	// Middle is an id or a path: kept on one line and shortened in the middle, so that both
	// ends show (20261130T0…-ab12cd, /var/lib/…/data). -o json has the full value.
	Middle
)

// Column is a table column: its header, and how it gives way when the table is too wide.
type Column struct {
	Header string
	Shrink Shrink
}

// Columns makes Wrap columns of headers, except that a STATUS column is Keep: a status is
// never shortened, whichever table it is in.
func Columns(headers ...string) []Column {
	cols := make([]Column, len(headers))
	for i, h := range headers {
		cols[i] = Column{Header: h}
		if h == "STATUS" {
			cols[i].Shrink = Keep
		}
	}
	return cols
}

// WithWidth returns w carrying the width of what it writes to, in terminal columns: tables
// and long lines written to it are fitted to that width. cmd/firedrill sets it from the
// terminal; width <= 0 means unknown (a pipe, a file), and output is written in full.
func WithWidth(w io.Writer, width int) io.Writer {
	if width <= 0 {
		return w
	}
	return sized{Writer: w, width: width}
}

type sized struct {
	io.Writer
	width int
}

// WidthOf returns the width carried by w (WithWidth), or 0 when unknown.
func WidthOf(w io.Writer) int {
	if s, ok := w.(sized); ok {
		return s.width
	}
	return 0
}

// Table writes a table whose columns are Columns(header...).
func Table(w io.Writer, header []string, rows [][]string) error {
	return Fit(w, Columns(header...), rows)
}

// unknownWidth is the cap on a table of unknown width: one column may be at most this divided
// by the number of columns (what tables were before they fitted the terminal; pipes and
// files keep it).
const unknownWidth = 160

// Fit writes a table, fitted to WidthOf(w) when that is known.
func Fit(w io.Writer, cols []Column, rows [][]string) error {
	opts := []tablewriter.Option{
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNormal),
	}
	if width := WidthOf(w); width > 0 {
		l := layout(cols, rows, width)
		rows = l.cells(cols, rows)
		header := make([]string, len(cols))
		for i, c := range cols {
			header[i] = strings.Join(wrapText(c.Header, l.content[i]), "\n")
		}
		per := tw.NewMapper[int, int]()
		for i, cw := range l.content {
			per.Set(i, cw+2*l.pad)
		}
		opts = append(opts, tablewriter.WithHeaderAutoWrap(tw.WrapNormal), tablewriter.WithWidths(tw.CellWidth{PerColumn: per}))
		if l.pad == 0 {
			opts = append(opts, tablewriter.WithPadding(tw.Padding{Overwrite: true}))
		}
		return render(w, opts, header, rows)
	}
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = c.Header
	}
	return render(w, append(opts, tablewriter.WithMaxWidth(unknownWidth)), header, rows)
}

func render(w io.Writer, opts []tablewriter.Option, header []string, rows [][]string) error {
	t := tablewriter.NewTable(w, opts...)
	t.Header(toAny(header)...)
	for _, r := range rows {
		if err := t.Append(toAny(r)...); err != nil {
			return err
		}
	}
	return t.Render()
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// tableLayout is how wide each column's content is, and the padding on each side of a cell.
type tableLayout struct {
	content []int
	pad     int
}

// How far columns give way, in the order they do (see layout).
const (
	// comfortable is the narrowest free text is wrapped to before anything loses characters.
	comfortable = 40
	// minMiddle keeps an id's date and random suffix (20261121T1…-a1b2c3).
	minMiddle = 18
	// minWrap is the narrowest free text is wrapped to before the cell padding goes.
	minWrap = 10
	// last is how far anything but a status gives way on a terminal too narrow for the rest.
	last = 3
)

// layout gives each column a content width so that the table is at most width wide, giving
// way in this order, each step only as far as needed:
//  1. free text (Wrap) is wrapped, no narrower than its longest word (at most comfortable):
//     nothing is lost and no word is broken;
//  2. ids and paths (Middle) are shortened in the middle, down to minMiddle;
//  3. free text is wrapped down to minWrap, breaking long words;
//  4. the space each side of a cell goes, and 1–3 are done again with the room that makes;
//  5. everything but Keep columns goes down to a few characters.
//
// Keep columns never shrink: only when they alone are too wide (a terminal narrower than about
// 30 columns) is the table wider than width. Within a step the widest columns give way first.
func layout(cols []Column, rows [][]string, width int) tableLayout {
	n := len(cols)
	natural := make([]int, n)
	words := make([]int, n) // longest word of each column, headers included
	for i, c := range cols {
		natural[i], words[i] = textWidth(c.Header), longestWord(c.Header)
		for _, r := range rows {
			if i < len(r) {
				natural[i] = max(natural[i], textWidth(r[i]))
				words[i] = max(words[i], longestWord(r[i]))
			}
		}
	}
	floors := func(kind Shrink, floor func(i int) int) []int {
		f := make([]int, n)
		for i, c := range cols {
			f[i] = -1 // not in this step
			if c.Shrink == kind {
				f[i] = min(natural[i], floor(i))
			}
		}
		return f
	}
	steps := [][]int{
		floors(Wrap, func(i int) int { return min(max(words[i], minWrap), comfortable) }),
		floors(Middle, func(i int) int { return max(minMiddle, longestWord(cols[i].Header)) }),
		floors(Wrap, func(i int) int { return max(minWrap, longestWord(cols[i].Header)) }),
	}
	borders := n + 1 // │ a │ b │: one rule each side of every column
	var ws []int
	for _, pad := range []int{1, 0} {
		budget := width - borders - 2*pad*n
		ws = append([]int(nil), natural...)
		for _, f := range steps {
			if sum(ws) <= budget {
				break
			}
			giveWay(ws, f, budget)
		}
		if sum(ws) <= budget {
			return tableLayout{content: ws, pad: pad}
		}
	}
	for _, kind := range []Shrink{Middle, Wrap} {
		giveWay(ws, floors(kind, func(int) int { return last }), width-borders)
	}
	return tableLayout{content: ws, pad: 0}
}

// giveWay narrows the columns with a floor (>= 0) until the widths sum to budget: all of them
// are capped at the same width, the largest that fits (none below its floor), so the widest give
// way first; what the rounding leaves over is handed back (see below).
func giveWay(ws, floor []int, budget int) {
	capped := func(c int) []int {
		out := append([]int(nil), ws...)
		for i := range out {
			if floor[i] >= 0 {
				out[i] = max(floor[i], min(ws[i], c))
			}
		}
		return out
	}
	c := 0
	for c < slices.Max(ws) && sum(capped(c+1)) <= budget {
		c++
	}
	out := capped(c)
	left := budget - sum(out)
	// What is left goes first to columns it makes whole (no wrapping at all), the closest
	// first, then one each from the left.
	byGap := make([]int, 0, len(out))
	for i := range out {
		if floor[i] >= 0 && out[i] < ws[i] {
			byGap = append(byGap, i)
		}
	}
	slices.SortStableFunc(byGap, func(a, b int) int { return (ws[a] - out[a]) - (ws[b] - out[b]) })
	for _, i := range byGap {
		if gap := ws[i] - out[i]; gap <= left {
			out[i], left = ws[i], left-gap
		}
	}
	for i := 0; i < len(out) && left > 0; i++ {
		if floor[i] >= 0 && out[i] < ws[i] {
			out[i]++
			left--
		}
	}
	copy(ws, out)
}

// cells makes every cell fit its column's content width.
func (l tableLayout) cells(cols []Column, rows [][]string) [][]string {
	out := make([][]string, len(rows))
	for r, row := range rows {
		out[r] = make([]string, len(row))
		for i, cell := range row {
			if i >= len(cols) {
				out[r][i] = cell
				continue
			}
			cw := l.content[i]
			switch cols[i].Shrink {
			case Middle:
				lines := strings.Split(cell, "\n")
				for j, line := range lines {
					lines[j] = ShortenMiddle(line, cw)
				}
				out[r][i] = strings.Join(lines, "\n")
			case Keep:
				out[r][i] = cell
			default:
				out[r][i] = strings.Join(wrapText(cell, cw), "\n")
			}
		}
	}
	return out
}

// wrapText wraps s at spaces into lines at most width wide (twwarp, as tablewriter does),
// after breaking every word wider than that (breakWord). Existing line breaks stay.
func wrapText(s string, width int) []string {
	if width <= 0 {
		return strings.Split(s, "\n")
	}
	var out []string
	for _, line := range strings.Split(s, "\n") {
		var segs []string
		cur := []string{}
		for _, word := range strings.Fields(line) {
			if twwidth.Width(word) <= width {
				cur = append(cur, word)
				continue
			}
			parts := breakWord(word, width)
			// The first part may still share a line with the words before it; each later
			// part starts a line of its own, so that a word is never split by a space.
			cur = append(cur, parts[0])
			for _, p := range parts[1:] {
				segs = append(segs, strings.Join(cur, " "))
				cur = []string{p}
			}
		}
		segs = append(segs, strings.Join(cur, " "))
		for _, seg := range segs {
			if twwidth.Width(seg) <= width {
				out = append(out, seg)
				continue
			}
			lines, _ := twwarp.WrapString(seg, width)
			out = append(out, lines...)
		}
	}
	return out
}

// breakWord cuts a word wider than width into parts at most width wide, each ending after the
// last '/', '-', ':', '.', ',' or '=' of its span when that leaves it at least half full.
func breakWord(word string, width int) []string {
	var parts []string
	rs := []rune(word)
	for len(rs) > 0 {
		n, w := 0, 0
		for n < len(rs) {
			rw := twwidth.Width(string(rs[n]))
			if w+rw > width && n > 0 {
				break
			}
			w += rw
			n++
		}
		if n < len(rs) {
			for j := n; j > 0 && j*2 >= n; j-- {
				if strings.ContainsRune("/-:.,=", rs[j-1]) {
					n = j
					break
				}
			}
		}
		parts = append(parts, string(rs[:n]))
		rs = rs[n:]
	}
	return parts
}

// ShortenMiddle shortens s to at most width columns by replacing its middle with "…", keeping
// both ends: a path keeps its leading directories and its last element (/var/lib/…/data), an
// id its random suffix after the last '-' (20261130T0…-ab12cd).
func ShortenMiddle(s string, width int) string {
	if textWidth(s) <= width {
		return s
	}
	const ell = "…"
	if width < 3 {
		return twwidth.Truncate(s, width)
	}
	avail := width - 1
	if i := strings.LastIndexByte(s, '/'); i > 0 && i < len(s)-1 && !strings.Contains(s, "://") {
		// A path: whole leading elements, then …, then the last element.
		// The prefix never fits whole (s would), so head ends with a '/'.
		tail := s[i:]
		if textWidth(tail) <= avail {
			head := ""
			for _, el := range strings.SplitAfter(s[:i], "/") {
				if textWidth(head+el)+textWidth(tail) > avail {
					break
				}
				head += el
			}
			return head + ell + tail
		}
	}
	tail := ""
	if i := strings.LastIndexByte(s, '-'); i > 0 && textWidth(s[i:]) <= avail/2 {
		tail = s[i:]
	} else {
		tail = lastColumns(s, avail/2)
	}
	return twwidth.Truncate(s, avail-textWidth(tail)) + ell + tail
}

// lastColumns returns the end of s that is at most n columns wide.
func lastColumns(s string, n int) string {
	rs := []rune(s)
	w, i := 0, len(rs)
	for i > 0 {
		rw := twwidth.Width(string(rs[i-1]))
		if w+rw > n {
			break
		}
		w += rw
		i--
	}
	return string(rs[i:])
}

// textWidth is the width of the widest line of s.
func textWidth(s string) int {
	w := 0
	for _, line := range strings.Split(s, "\n") {
		w = max(w, twwidth.Width(line))
	}
	return w
}

func longestWord(s string) int {
	w := 0
	for _, f := range strings.Fields(s) {
		w = max(w, twwidth.Width(f))
	}
	return w
}

func sum(xs []int) int {
	t := 0
	for _, x := range xs {
		t += x
	}
	return t
}

// field writes one "  label:  value" line of a summary, the value wrapped under itself when
// the output's width is known.
func field(w io.Writer, label, value string) {
	prefix := fmt.Sprintf("  %-17s", label+":")
	wrapped(w, prefix, strings.Repeat(" ", len(prefix)), value)
}

// wrapped writes first+text, wrapped to the output's width when that is known, continuation
// lines starting with indent.
func wrapped(w io.Writer, first, indent, text string) {
	width := WidthOf(w)
	if width <= 0 || twwidth.Width(first)+textWidth(text) <= width {
		fmt.Fprintf(w, "%s%s\n", first, text)
		return
	}
	lines := wrapText(text, max(width-max(twwidth.Width(first), len(indent)), minWrap))
	for i, l := range lines {
		if i == 0 {
			fmt.Fprintf(w, "%s%s\n", first, l)
			continue
		}
		fmt.Fprintf(w, "%s%s\n", indent, l)
	}
}

// Timestamp formats t for a table cell: RFC 3339, with a space between date and time when the
// table is fitted to a terminal (RFC 3339 allows it for readability), so that a narrow column
// wraps it into date and time instead of breaking it mid-way. Pipes get the usual 'T' form.
func Timestamp(w io.Writer, t time.Time) string {
	if WidthOf(w) > 0 {
		return t.Format("2006-01-02 15:04:05Z07:00")
	}
	return t.Format(time.RFC3339)
}
