package checks

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStatusText(t *testing.T) {
	tests := []struct {
		status Status
		text   string
	}{
		{Pass, "pass"},
		{Warn, "warn"},
		{Fail, "fail"},
		{Error, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			if got := tt.status.String(); got != tt.text {
				t.Errorf("String() = %q, want %q", got, tt.text)
			}
			b, err := tt.status.MarshalText()
			if err != nil || string(b) != tt.text {
				t.Fatalf("MarshalText() = %q, %v; want %q", b, err, tt.text)
			}
			var back Status
			if err := back.UnmarshalText(b); err != nil {
				t.Fatalf("UnmarshalText(%q): %v", b, err)
			}
			if back != tt.status {
				t.Errorf("round trip: got %v, want %v", back, tt.status)
			}

			// The same through a Finding's JSON, where reports read it.
			in := Finding{Check: "x", Status: tt.status, Message: "m"}
			js, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			if want := `"status":"` + tt.text + `"`; !strings.Contains(string(js), want) {
				t.Errorf("JSON %s does not contain %s", js, want)
			}
			var out Finding
			if err := json.Unmarshal(js, &out); err != nil {
				t.Fatalf("json.Unmarshal(%s): %v", js, err)
			}
			if out.Status != tt.status || out.Check != "x" || out.Message != "m" {
				t.Errorf("JSON round trip: got %+v, want %+v", out, in)
			}
		})
	}
}

func TestStatusUnmarshalRejectsUnknown(t *testing.T) {
	for _, in := range []string{"", "FAIL", "Pass", "ok", "status(7)"} {
		t.Run(in, func(t *testing.T) {
			s := Warn
			err := s.UnmarshalText([]byte(in))
			if err == nil {
				t.Fatalf("UnmarshalText(%q) = %v, want an error", in, s)
			}
			if s != Warn {
				t.Errorf("UnmarshalText(%q) changed the status to %v on error", in, s)
			}
		})
	}
}

func TestStatusStringOutOfRange(t *testing.T) {
	if got, want := Status(7).String(), "status(7)"; got != want {
		t.Errorf("Status(7).String() = %q, want %q", got, want)
	}
}

func TestWorst(t *testing.T) {
	f := func(ss ...Status) []Finding {
		out := make([]Finding, len(ss))
		for i, s := range ss {
			out[i] = Finding{Check: "c", Status: s}
		}
		return out
	}
	tests := []struct {
		name string
		in   []Finding
		want Status
	}{
		{"none", nil, Pass},
		{"empty", []Finding{}, Pass},
		{"all pass", f(Pass, Pass), Pass},
		{"warn", f(Pass, Warn, Pass), Warn},
		{"fail beats warn", f(Warn, Fail, Pass), Fail},
		// A proven failure outranks "could not check" (issue 8, item 0): this row said Error.
		{"fail beats error", f(Fail, Error, Warn), Fail},
		{"fail beats error, error first", f(Error, Fail), Fail},
		{"error beats warn", f(Warn, Error, Pass), Error},
		{"error first", f(Error, Pass), Error},
		{"unknown status counts as error", f(Pass, Status(7)), Status(7)},
		{"fail beats an unknown status", f(Status(7), Fail), Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Worst(tt.in); got != tt.want {
				t.Errorf("Worst() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFindingBuilders(t *testing.T) {
	ev := Evidence{"n": 3}
	tests := []struct {
		name string
		got  Finding
		want Status
	}{
		{"Passf", Passf("c", ev, "%d ok", 3), Pass},
		{"Warnf", Warnf("c", ev, "%d ok", 3), Warn},
		{"Failf", Failf("c", ev, "%d ok", 3), Fail},
		{"Errorf", Errorf("c", ev, "%d ok", 3), Error},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got.Status != tt.want || tt.got.Check != "c" || tt.got.Message != "3 ok" || tt.got.Evidence["n"] != 3 {
				t.Errorf("got %+v, want check c, status %v, message %q and the evidence", tt.got, tt.want, "3 ok")
			}
		})
	}
}

// TestPrecedence is the precedence table itself: for every pair of statuses, which one decides.
func TestPrecedence(t *testing.T) {
	all := []Status{Pass, Warn, Error, Fail}
	// want[a][b] is Decisive(a, b).
	want := map[Status]map[Status]Status{
		Pass:  {Pass: Pass, Warn: Warn, Error: Error, Fail: Fail},
		Warn:  {Pass: Warn, Warn: Warn, Error: Error, Fail: Fail},
		Error: {Pass: Error, Warn: Error, Error: Error, Fail: Fail},
		Fail:  {Pass: Fail, Warn: Fail, Error: Fail, Fail: Fail},
	}
	for _, a := range all {
		for _, b := range all {
			t.Run(a.String()+"+"+b.String(), func(t *testing.T) {
				if got := Decisive(a, b); got != want[a][b] {
					t.Errorf("Decisive(%v, %v) = %v, want %v", a, b, got, want[a][b])
				}
				if got := Decisive(b, a); got != want[a][b] {
					t.Errorf("Decisive(%v, %v) = %v, want %v (order must not matter)", b, a, got, want[a][b])
				}
				if got, w := a.Outranks(b), want[a][b] == a && a != b; got != w {
					t.Errorf("%v.Outranks(%v) = %v, want %v", a, b, got, w)
				}
			})
		}
	}
	if got := Decisive(); got != Pass {
		t.Errorf("Decisive() = %v, want pass", got)
	}
}
