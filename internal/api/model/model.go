// Package model loads the botocore AWS Backup service model
// (service-2.json.gz, kept here as data) that drives Coffer's rest-json
// routing and server-side validation.
package model

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
)

//go:embed service-2.json.gz
var serviceGz []byte

// Model is the parsed service model.
type Model struct {
	Metadata   map[string]any        `json:"metadata"`
	Operations map[string]*Operation `json:"operations"`
	Shapes     map[string]*Shape     `json:"shapes"`
}

// Operation is one API operation.
type Operation struct {
	Name string `json:"name"`
	HTTP struct {
		Method       string `json:"method"`
		RequestURI   string `json:"requestUri"`
		ResponseCode int    `json:"responseCode"`
	} `json:"http"`
	Input  *Ref `json:"input"`
	Output *Ref `json:"output"`
}

// Ref names a shape.
type Ref struct {
	Shape string `json:"shape"`
}

// Member is a structure member.
type Member struct {
	Shape            string `json:"shape"`
	Location         string `json:"location"`
	LocationName     string `json:"locationName"`
	IdempotencyToken bool   `json:"idempotencyToken"`
}

// Shape is a model shape.
type Shape struct {
	Type      string             `json:"type"`
	Members   map[string]*Member `json:"members"`
	Required  []string           `json:"required"`
	Member    *Ref               `json:"member"`
	Key       *Ref               `json:"key"`
	Value     *Ref               `json:"value"`
	Enum      []string           `json:"enum"`
	Pattern   string             `json:"pattern"`
	Min       *float64           `json:"min"`
	Max       *float64           `json:"max"`
	Exception bool               `json:"exception"`

	// Compiled is the compiled Pattern (nil when none).
	Compiled *regexp.Regexp `json:"-"`
	// EnumSet holds Enum for lookups.
	EnumSet map[string]bool `json:"-"`
}

// MemberNames returns a structure's member names in sorted order.
func (s *Shape) MemberNames() []string {
	names := make([]string, 0, len(s.Members))
	for n := range s.Members {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Load parses the embedded model and compiles its patterns.
func Load() (*Model, error) {
	zr, err := gzip.NewReader(bytes.NewReader(serviceGz))
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	var m Model
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	for name, s := range m.Shapes {
		if s.Pattern != "" {
			re, err := regexp.Compile(s.Pattern)
			if err != nil {
				return nil, fmt.Errorf("model: shape %s: pattern %q: %w", name, s.Pattern, err)
			}
			s.Compiled = re
		}
		if len(s.Enum) > 0 {
			s.EnumSet = make(map[string]bool, len(s.Enum))
			for _, e := range s.Enum {
				s.EnumSet[e] = true
			}
		}
	}
	for name, op := range m.Operations {
		if op.Input != nil && m.Shapes[op.Input.Shape] == nil {
			return nil, fmt.Errorf("model: operation %s: unknown input shape %s", name, op.Input.Shape)
		}
	}
	return &m, nil
}
