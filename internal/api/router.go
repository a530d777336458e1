package api

import (
	"net/url"
	"strings"

	"coffer/internal/api/model"
)

type segment struct {
	lit   string
	label string // non-empty for {label}
}

type route struct {
	name     string
	op       *model.Operation
	method   string
	segs     []segment
	queryLit string // e.g. "delete" for "...?delete"
	literals int
}

// router matches method + raw path against every operation of the model.
type router struct {
	routes map[string][]*route // by method
}

func newRouter(m *model.Model) *router {
	rt := &router{routes: map[string][]*route{}}
	for name, op := range m.Operations {
		uri := op.HTTP.RequestURI
		r := &route{name: name, op: op, method: op.HTTP.Method}
		if p, q, ok := strings.Cut(uri, "?"); ok {
			uri, r.queryLit = p, q
		}
		for _, part := range strings.Split(uri, "/") {
			if strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}") {
				r.segs = append(r.segs, segment{label: strings.TrimSuffix(strings.Trim(part, "{}"), "+")})
			} else {
				r.segs = append(r.segs, segment{lit: part})
				r.literals++
			}
		}
		rt.routes[r.method] = append(rt.routes[r.method], r)
	}
	return rt
}

// match splits the still-encoded path on "/" and decodes each label after
// splitting, so labels may contain an encoded "/". A missing or extra
// trailing slash is tolerated only when exactly one route then matches.
func (rt *router) match(method, rawPath string, query url.Values) (*route, map[string]string) {
	parts := strings.Split(rawPath, "/")
	if r, labels := rt.best(method, parts, query); r != nil {
		return r, labels
	}
	var alt []string
	if len(parts) > 1 && parts[len(parts)-1] == "" {
		alt = parts[:len(parts)-1]
	} else {
		alt = append(append([]string(nil), parts...), "")
	}
	return rt.best(method, alt, query)
}

func (rt *router) best(method string, parts []string, query url.Values) (*route, map[string]string) {
	var found *route
	var foundLabels map[string]string
	bestScore, ties := -1, 0
	for _, r := range rt.routes[method] {
		labels, ok := r.matches(parts, query)
		if !ok {
			continue
		}
		score := r.literals
		if r.queryLit != "" {
			score += 100
		}
		switch {
		case score > bestScore:
			found, foundLabels, bestScore, ties = r, labels, score, 1
		case score == bestScore:
			ties++
		}
	}
	if ties != 1 {
		return nil, nil
	}
	return found, foundLabels
}

func (r *route) matches(parts []string, query url.Values) (map[string]string, bool) {
	if len(parts) != len(r.segs) {
		return nil, false
	}
	if r.queryLit != "" {
		if _, ok := query[r.queryLit]; !ok {
			return nil, false
		}
	}
	var labels map[string]string
	for i, s := range r.segs {
		if s.label == "" {
			if parts[i] != s.lit {
				return nil, false
			}
			continue
		}
		if parts[i] == "" {
			return nil, false
		}
		v, err := url.PathUnescape(parts[i])
		if err != nil || v == "" {
			return nil, false
		}
		if labels == nil {
			labels = map[string]string{}
		}
		labels[s.label] = v
	}
	return labels, true
}
