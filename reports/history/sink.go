package history

import (
	"context"

	"github.com/firedrill/firedrill/reports"
)

// RecordDrill saves a drill result: the store is a drill sink (restore/drill.Sink).
func (s *Store) RecordDrill(ctx context.Context, r *reports.DrillResult) error {
	_, err := s.Save(ctx, r)
	return err
}
