package hbr

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of a request's parameters.
const (
	maxParams      = 1000
	maxNameLen     = 128
	maxValueLen    = 64 << 10
	maxFilters     = 20
	maxFilterVals  = 100
	maxPatternLen  = 255 // Include/Exclude entries (HBR's documented limit)
	maxPatterns    = 1000
	maxQueryTerms  = 20
	maxPageSize    = 99
	maxSearchLimit = 100
)

// params is a request's parameter set: the query and the form body
// merged (a name given twice, in either or both, is an error). Getters
// validate and return *Error naming the parameter.
type params struct {
	m map[string]string
}

var nameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._-]*$`)

// parseParams merges the raw query and, for a form-encoded body, the body.
func parseParams(rawQuery string, contentType string, body []byte) (*params, *Error) {
	p := &params{m: map[string]string{}}
	add := func(src string, vals url.Values) *Error {
		for k, vs := range vals {
			if len(vs) != 1 {
				return invalid(trunc(k), "the parameter is given %d times", len(vs))
			}
			if _, dup := p.m[k]; dup {
				return invalid(trunc(k), "the parameter is given in both the query and the body")
			}
			if len(k) > maxNameLen || !nameRE.MatchString(k) {
				return invalid(trunc(k), "not a parameter name")
			}
			if len(vs[0]) > maxValueLen {
				return invalid(k, "the value is longer than %d bytes", maxValueLen)
			}
			if !utf8.ValidString(vs[0]) || strings.ContainsRune(vs[0], 0) {
				return invalid(k, "the value must be UTF-8 text without NUL")
			}
			p.m[k] = vs[0]
			if len(p.m) > maxParams {
				return errf(http.StatusBadRequest, codeInvalidParameter, "The request has more than %d parameters.", maxParams)
			}
		}
		return nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, errf(http.StatusBadRequest, codeInvalidParameter, "The query string is malformed.")
	}
	if e := add("query", q); e != nil {
		return nil, e
	}
	if len(body) == 0 {
		return p, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, errf(http.StatusBadRequest, codeInvalidParameter, "The request body must be application/x-www-form-urlencoded.")
	}
	f, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, errf(http.StatusBadRequest, codeInvalidParameter, "The form body is malformed.")
	}
	if e := add("body", f); e != nil {
		return nil, e
	}
	return p, nil
}

func trunc(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// get returns a parameter; absent and empty are both "".
func (p *params) get(name string) string { return p.m[name] }

func (p *params) has(name string) bool { _, ok := p.m[name]; return ok }

// required returns a non-empty parameter.
func (p *params) required(name string) (string, *Error) {
	v := p.m[name]
	if v == "" {
		return "", missing(name)
	}
	return v, nil
}

// enum returns a parameter that must be one of allowed ("" when absent).
func (p *params) enum(name string, allowed ...string) (string, *Error) {
	v, ok := p.m[name]
	if !ok {
		return "", nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", invalid(name, "%q is not one of %s", trunc(v), strings.Join(allowed, ", "))
}

// integer returns a decimal integer parameter in [min, max]; def when
// absent.
func (p *params) integer(name string, lo, hi, def int64) (int64, *Error) {
	v, ok := p.m[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, invalid(name, "%q is not an integer", trunc(v))
	}
	if n < lo || n > hi {
		return 0, invalid(name, "%d is outside %d to %d", n, lo, hi)
	}
	return n, nil
}

// stringList decodes a JSON array of strings (Include, Exclude): each
// entry 1 to maxLen characters; nil when absent.
func (p *params) stringList(name string, maxLen int) ([]string, *Error) {
	v, ok := p.m[name]
	if !ok {
		return nil, nil
	}
	return decodeStringList(name, v, maxLen)
}

func decodeStringList(name, v string, maxLen int) ([]string, *Error) {
	var list []string
	if err := json.Unmarshal([]byte(v), &list); err != nil || list == nil {
		return nil, invalid(name, "must be a JSON array of strings, e.g. [\"/home/*.pdf\"]")
	}
	if len(list) > maxPatterns {
		return nil, invalid(name, "has %d entries, more than %d", len(list), maxPatterns)
	}
	for _, s := range list {
		if s == "" {
			return nil, invalid(name, "an entry is empty")
		}
		if utf8.RuneCountInString(s) > maxLen {
			return nil, invalid(name, "the entry %q is longer than %d characters", trunc(s), maxLen)
		}
		if strings.ContainsRune(s, 0) {
			return nil, invalid(name, "an entry contains NUL")
		}
	}
	return list, nil
}

// jsonObject decodes a JSON object parameter into out, rejecting unknown
// members; present reports whether the parameter was given.
func (p *params) jsonObject(name string, out any) (bool, *Error) {
	v, ok := p.m[name]
	if !ok {
		return false, nil
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return true, invalid(name, "must be a JSON object of the documented members: %s", jsonProblem(err))
	}
	if dec.More() {
		return true, invalid(name, "has data after the JSON object")
	}
	return true, nil
}

// jsonProblem describes a decoding error without echoing large inputs.
func jsonProblem(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	return trunc(msg)
}

// filter is one Filters.N entry of DescribeRestoreJobs2.
type filter struct {
	Key      string
	Operator string
	Values   []string
}

var filterRE = regexp.MustCompile(`^Filters\.([0-9]+)\.(Key|Operator|Values\.([0-9]+))$`)

// filters decodes the flattened Filters.N.Key / .Operator / .Values.M
// parameters (1-based, without gaps).
func (p *params) filters() ([]filter, *Error) {
	type raw struct {
		key, op *string
		vals    map[int]string
	}
	byIdx := map[int]*raw{}
	for name, v := range p.m {
		if !strings.HasPrefix(name, "Filters.") {
			continue
		}
		m := filterRE.FindStringSubmatch(name)
		if m == nil {
			return nil, invalid(trunc(name), "Filters members are Filters.N.Key, Filters.N.Operator and Filters.N.Values.M")
		}
		i, err := strconv.Atoi(m[1])
		if err != nil || i < 1 || i > maxFilters || m[1][0] == '0' {
			return nil, invalid(name, "the filter index must be 1 to %d", maxFilters)
		}
		r := byIdx[i]
		if r == nil {
			r = &raw{vals: map[int]string{}}
			byIdx[i] = r
		}
		switch m[2] {
		case "Key":
			v := v
			r.key = &v
		case "Operator":
			v := v
			r.op = &v
		default:
			j, err := strconv.Atoi(m[3])
			if err != nil || j < 1 || j > maxFilterVals || m[3][0] == '0' {
				return nil, invalid(name, "the value index must be 1 to %d", maxFilterVals)
			}
			r.vals[j] = v
		}
	}
	idx := make([]int, 0, len(byIdx))
	for i := range byIdx {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]filter, 0, len(idx))
	for n, i := range idx {
		if i != n+1 {
			return nil, invalid("Filters."+strconv.Itoa(n+1), "filters are numbered from 1 without gaps")
		}
		r := byIdx[i]
		pre := "Filters." + strconv.Itoa(i)
		if r.key == nil || *r.key == "" {
			return nil, missing(pre + ".Key")
		}
		f := filter{Key: *r.key, Operator: "IN"}
		if r.op != nil {
			f.Operator = *r.op
		}
		for j := 1; j <= len(r.vals); j++ {
			v, ok := r.vals[j]
			if !ok {
				return nil, invalid(pre+".Values."+strconv.Itoa(j), "values are numbered from 1 without gaps")
			}
			f.Values = append(f.Values, v)
		}
		if len(f.Values) == 0 {
			return nil, missing(pre + ".Values.1")
		}
		out = append(out, f)
	}
	return out, nil
}
