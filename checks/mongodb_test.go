package checks

import (
	"errors"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"
)

func TestMongoValidateFinding(t *testing.T) {
	damaged := mongo.CommandError{Code: 296, Name: "DataCorruptionDetected", Message: "BSON document is corrupt"}
	tests := []struct {
		name     string
		outcomes []validateOutcome
		want     Status
	}{
		{"all valid", []validateOutcome{{Collection: "shop.orders", Result: validateResult{Valid: true, NRecords: 10}}}, Pass},
		{"an invalid collection fails", []validateOutcome{
			{Collection: "shop.orders", Result: validateResult{Valid: true}},
			{Collection: "shop.items", Result: validateResult{Valid: false, Errors: []string{"index by_sku is missing 3 keys"}}},
		}, Fail},
		{"a lost connection could not check", []validateOutcome{{Collection: "shop.orders", Err: errors.New("connection reset")}}, Error},
		{"damage outranks could not check", []validateOutcome{
			{Collection: "shop.a", Err: errors.New("connection reset")},
			{Collection: "shop.b", Err: fmt.Errorf("while validating: %w", damaged)},
		}, Fail},
		{"no collections", nil, Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := validateFinding(tt.outcomes)
			if f.Status != tt.want {
				t.Errorf("status %s, want %s: %s %v", f.Status, tt.want, f.Message, f.Evidence)
			}
		})
	}
}

func TestMongoCountsFinding(t *testing.T) {
	counts := map[string]int64{"shop.orders": 100, "shop.items": 3}
	if f := countsFinding(counts, map[string]int64{"shop.orders": 100}); f.Status != Pass {
		t.Errorf("at the minimum: %s %s", f.Status, f.Message)
	}
	f := countsFinding(counts, map[string]int64{"shop.orders": 101, "shop.gone": 1})
	if f.Status != Fail || f.Message != "shop.gone is missing; shop.orders has 100 documents, fewer than 101" {
		t.Errorf("below the minimum: %s %q", f.Status, f.Message)
	}
}

func TestMongoBuildFor(t *testing.T) {
	cfg := Config{Mongo: []MongoAssertion{{Name: "orders", Database: "shop", Collection: "orders", Expect: Expect{}}}, RowCounts: &RowCountConfig{}}
	got, skipped := BuildFor(cfg, engineMongoDB)
	var names []string
	for _, c := range got {
		names = append(names, c.Name())
	}
	want := []string{ValidateName, RowCountsName, MongoPrefix + "orders"}
	for _, w := range want {
		found := false
		for _, n := range names {
			found = found || n == w
		}
		if !found {
			t.Errorf("checks for mongodb %v, missing %s", names, w)
		}
	}
	for _, s := range skipped {
		if s.Check == RowCountsName {
			t.Errorf("row-counts skipped for mongodb although it has an implementation: %+v", s)
		}
	}
}
