package resource

import (
	"fmt"
	"sort"
)

// Registry holds the plugins of one deployment, built explicitly in
// cmd/coffer. It is read-only after construction.
type Registry struct {
	byType map[string]Plugin
	types  []string
}

// NewRegistry returns a registry of plugins; two plugins of one type are
// an error.
func NewRegistry(plugins ...Plugin) (*Registry, error) {
	r := &Registry{byType: map[string]Plugin{}}
	for _, p := range plugins {
		t := p.Type()
		if t == "" {
			return nil, fmt.Errorf("resource: plugin %T has no type", p)
		}
		if _, dup := r.byType[t]; dup {
			return nil, fmt.Errorf("resource: two plugins for type %s", t)
		}
		r.byType[t] = p
		r.types = append(r.types, t)
	}
	sort.Strings(r.types)
	return r, nil
}

// Lookup returns the plugin of type typ.
func (r *Registry) Lookup(typ string) (Plugin, bool) {
	p, ok := r.byType[typ]
	return p, ok
}

// ForARN returns the plugin whose ARN shape arn has, and what it names.
func (r *Registry) ForARN(arn string) (Plugin, Ref, bool) {
	for _, t := range r.types {
		p := r.byType[t]
		if ref, ok := p.ParseARN(arn); ok {
			return p, ref, true
		}
	}
	return nil, Ref{}, false
}

// Types lists the registered types, sorted.
func (r *Registry) Types() []string {
	return append([]string(nil), r.types...)
}

// Plugins lists the registered plugins, sorted by type.
func (r *Registry) Plugins() []Plugin {
	out := make([]Plugin, 0, len(r.types))
	for _, t := range r.types {
		out = append(out, r.byType[t])
	}
	return out
}
