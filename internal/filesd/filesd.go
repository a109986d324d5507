// Package filesd is Prometheus's file-based service discovery format: the
// one type for what leaklab writes ('run --all --targets-file', the bench
// script's targets) and reads ('collect --targets').
package filesd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/leaklab/leaklab/internal/atomicfile"
)

// Group is one entry of a file_sd file: addresses sharing labels.
type Group struct {
	Targets []string          `json:"targets" yaml:"targets"`
	Labels  map[string]string `json:"labels" yaml:"labels"`
}

// Marshal renders groups as file_sd JSON, indented and ending in a
// newline; no groups is the empty list, not null.
func Marshal(groups []Group) ([]byte, error) {
	if groups == nil {
		groups = []Group{}
	}
	data, err := json.MarshalIndent(groups, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// WriteFile writes groups to path as file_sd JSON, atomically: Prometheus
// watches the file and must never read half of it.
func WriteFile(path string, groups []Group) error {
	data, err := Marshal(groups)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, data)
}

// Parse reads file_sd content, JSON or YAML as Prometheus accepts, and
// refuses fields file_sd does not have (a typo would drop targets
// silently).
func Parse(data []byte) ([]Group, error) {
	var groups []Group
	trimmed := strings.TrimSpace(string(data))
	if trimmed == "" {
		return nil, errors.New("empty: want a list like [{\"targets\": [\"127.0.0.1:8080\"]}]")
	}
	if strings.HasPrefix(trimmed, "[") || strings.HasPrefix(trimmed, "{") {
		dec := json.NewDecoder(strings.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&groups); err != nil {
			return nil, fmt.Errorf("not file_sd JSON (want [{\"targets\": [...], \"labels\": {...}}]): %w", err)
		}
		return groups, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// A document of comments only is an empty list, not an error.
	if err := dec.Decode(&groups); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("not file_sd YAML (want a list of {targets: [...], labels: {...}}): %w", err)
	}
	return groups, nil
}
