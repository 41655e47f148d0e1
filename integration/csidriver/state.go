package csidriver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateVersion is written into the state file so that a future format change is detected
// rather than misread.
const stateVersion = 1

type volume struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Capacity int64  `json:"capacityBytes"`
	// SourceSnapshotID or SourceVolumeID is set when the volume was made from that content source.
	SourceSnapshotID string            `json:"sourceSnapshotId,omitempty"`
	SourceVolumeID   string            `json:"sourceVolumeId,omitempty"`
	Parameters       map[string]string `json:"parameters,omitempty"`
	Created          time.Time         `json:"created"`
	// Seq orders volumes for ListVolumes pagination.
	Seq uint64 `json:"seq"`
}

type snapshot struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	SourceVolumeID string    `json:"sourceVolumeId"`
	Size           int64     `json:"sizeBytes"`
	Created        time.Time `json:"created"`
	Seq            uint64    `json:"seq"`
}

// publication is one NodePublishVolume target that the driver bind-mounted.
type publication struct {
	VolumeID string `json:"volumeId"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
	Mode     string `json:"accessMode"`
}

type state struct {
	Version      int                     `json:"version"`
	NextSeq      uint64                  `json:"nextSeq"`
	Volumes      map[string]*volume      `json:"volumes"`
	Snapshots    map[string]*snapshot    `json:"snapshots"`
	Publications map[string]*publication `json:"publications"` // by target path
}

func newState() *state {
	return &state{
		Version:      stateVersion,
		Volumes:      map[string]*volume{},
		Snapshots:    map[string]*snapshot{},
		Publications: map[string]*publication{},
	}
}

func (s *state) seq() uint64 {
	s.NextSeq++
	return s.NextSeq
}

func loadState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("while reading the driver state %s: %w", path, err)
	}
	s := newState()
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("while parsing the driver state %s: %w", path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("driver state %s has version %d, this driver reads version %d", path, s.Version, stateVersion)
	}
	if s.Volumes == nil {
		s.Volumes = map[string]*volume{}
	}
	if s.Snapshots == nil {
		s.Snapshots = map[string]*snapshot{}
	}
	if s.Publications == nil {
		s.Publications = map[string]*publication{}
	}
	return s, nil
}

// save writes the state atomically: a crash leaves either the old or the new file.
func (s *state) save(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("while encoding the driver state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".state-*.json")
	if err != nil {
		return fmt.Errorf("while saving the driver state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("while writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("while syncing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("while closing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("while replacing the driver state %s: %w", path, err)
	}
	return nil
}
