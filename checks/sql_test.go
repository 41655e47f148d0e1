package checks

import (
	"strings"
	"testing"
)

func strp(s string) *string   { return &s }
func f64p(f float64) *float64 { return &f }

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name   string
		got    string
		expect Expect
		want   Status
		msg    string
	}{
		{"equals match", "t", Expect{Equals: strp("t")}, Pass, `returned "t" as expected`},
		{"equals mismatch", "f", Expect{Equals: strp("t")}, Fail, `returned "f", expected "t"`},
		{"equals is exact", " t", Expect{Equals: strp("t")}, Fail, `expected "t"`},
		{"equals a number as text", "42.0", Expect{Equals: strp("42")}, Fail, `expected "42"`},
		{"equals empty string", "", Expect{Equals: strp("")}, Pass, "as expected"},
		{"min met", "5", Expect{Min: f64p(1)}, Pass, "returned 5, within bounds"},
		{"min equal is inclusive", "1", Expect{Min: f64p(1)}, Pass, "within bounds"},
		{"below min", "0", Expect{Min: f64p(1)}, Fail, "returned 0, below the minimum 1"},
		{"max met", "10", Expect{Max: f64p(10)}, Pass, "within bounds"},
		{"above max", "11", Expect{Max: f64p(10)}, Fail, "returned 11, above the maximum 10"},
		{"fractional above max", "3.5", Expect{Max: f64p(3)}, Fail, "above the maximum 3"},
		{"within min and max", "5", Expect{Min: f64p(1), Max: f64p(10)}, Pass, "within bounds"},
		{"at both bounds", "7", Expect{Min: f64p(7), Max: f64p(7)}, Pass, "within bounds"},
		{"below min of a range", "-1", Expect{Min: f64p(0), Max: f64p(10)}, Fail, "below the minimum 0"},
		{"above max of a range", "1e3", Expect{Min: f64p(0), Max: f64p(10)}, Fail, "above the maximum 10"},
		{"surrounding spaces", " 42 ", Expect{Min: f64p(42)}, Pass, "within bounds"},
		{"negative bounds", "-5", Expect{Min: f64p(-10), Max: f64p(-1)}, Pass, "within bounds"},
		{"non-numeric", "abc", Expect{Min: f64p(1)}, Fail, `returned "abc", which is not a number`},
		{"boolean against bounds", "t", Expect{Max: f64p(1)}, Fail, "not a number"},
		{"empty against bounds", "", Expect{Min: f64p(0)}, Fail, "not a number"},
		{"infinity above max", "Infinity", Expect{Max: f64p(1e300)}, Fail, "above the maximum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := Evidence{"query": "SELECT 1"}
			f := evaluate("sql:a", ev, tt.got, tt.expect)
			if f.Status != tt.want {
				t.Errorf("status = %v, want %v (%s)", f.Status, tt.want, f.Message)
			}
			if !strings.Contains(f.Message, tt.msg) {
				t.Errorf("message = %q, want it to contain %q", f.Message, tt.msg)
			}
			if f.Check != "sql:a" {
				t.Errorf("check = %q, want sql:a", f.Check)
			}
			if f.Evidence["query"] != "SELECT 1" {
				t.Errorf("evidence = %v, want the evidence passed in", f.Evidence)
			}
		})
	}
}

func TestEvaluateNaN(t *testing.T) {
	for _, e := range []Expect{{Min: f64p(1)}, {Max: f64p(1)}, {Min: f64p(0), Max: f64p(10)}} {
		if f := evaluate("sql:a", Evidence{}, "NaN", e); f.Status != Fail {
			t.Errorf("evaluate(NaN, %v) = %v (%s), want fail", e, f.Status, f.Message)
		}
	}
}

func TestExpectString(t *testing.T) {
	tests := []struct {
		name string
		e    Expect
		want string
	}{
		{"equals", Expect{Equals: strp("t")}, `= "t"`},
		{"min", Expect{Min: f64p(1)}, ">= 1"},
		{"max", Expect{Max: f64p(2.5)}, "<= 2.5"},
		{"range", Expect{Min: f64p(1), Max: f64p(10)}, ">= 1 and <= 10"},
		{"nothing", Expect{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSQLName(t *testing.T) {
	s := &SQL{Assertion: SQLAssertion{Name: "balances-match"}}
	if got, want := s.Name(), "sql:balances-match"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
}
