package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"coffer/internal/api/model"
)

// MaxJSONDepth bounds nesting of request bodies; deeper bodies are a
// SerializationException before any allocation of the tree.
const MaxJSONDepth = 32

// MaxJSONElements bounds the objects, arrays, members and array elements of
// a request body, likewise checked before the tree is built: decoded, a
// 1 MiB body of tiny values would take 25-40 MiB, bounded this way ~2 MiB.
// AWS Backup inputs have tens of elements (e.g. at most 50 tags).
const MaxJSONElements = 10000

// decoder turns a routed request into a validated, normalised JSON object
// of the operation's input members, following the service model: labels
// from the path, query members by their exact (case-sensitive)
// locationName, body members by their PascalCase names. Unknown query names
// and body members are ignored. Every modelled constraint is checked.
//
// Error choice (documented in the README): malformed JSON, invalid UTF-8,
// a non-object body and nesting deeper than MaxJSONDepth are 400
// SerializationException; a well-formed value of the wrong JSON type or
// out of its constraints is 400 InvalidParameterValueException; an absent
// or empty required member is 400 MissingParameterValueException.
type decoder struct {
	m *model.Model
}

func (d *decoder) decode(op *model.Operation, labels map[string]string, query url.Values, body []byte) (map[string]any, error) {
	if op.Input == nil {
		return map[string]any{}, nil
	}
	shape := d.m.Shapes[op.Input.Shape]
	bodyObj, err := parseBody(body)
	if err != nil {
		return nil, err
	}
	in := map[string]any{}
	wild := map[string]string{}
	for _, name := range shape.MemberNames() {
		mem := shape.Members[name]
		ms := d.m.Shapes[mem.Shape]
		switch mem.Location {
		case "uri":
			if v, ok := labels[mem.LocationName]; ok {
				in[name] = v
			}
		case "querystring":
			vals, ok := query[mem.LocationName]
			if !ok {
				continue
			}
			if mem.Shape == "AccountId" && name != "BackupVaultAccountId" && accountWildcards[vals[0]] {
				wild[name] = vals[0]
				continue
			}
			v, err := queryValue(name, mem.LocationName, ms, d.m, vals)
			if err != nil {
				return nil, err
			}
			in[name] = v
		case "header", "headers":
			// No operation Coffer serves binds members to headers.
		default:
			if v, ok := bodyObj[name]; ok {
				in[name] = v
			}
		}
	}
	v, err := d.validate("", op.Input.Shape, in)
	if err != nil {
		return nil, err
	}
	out := v.(map[string]any)
	for k, w := range wild {
		out[k] = w
	}
	return out, nil
}

// accountWildcards are the documented non-numeric values of the account
// filters of the list and summary operations (ByAccountId "*"; summaries
// AccountId "ANY"/"AGGREGATE_ALL"), which the model's ^[0-9]{12}$ pattern
// does not admit. Handlers decide who may use them (organization scope).
var accountWildcards = map[string]bool{"*": true, "ANY": true, "AGGREGATE_ALL": true}

func parseBody(body []byte) (map[string]any, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return map[string]any{}, nil
	}
	if !utf8.Valid(trimmed) {
		return nil, apiErr(http.StatusBadRequest, excSerialization, "request body is not valid UTF-8")
	}
	if err := checkStructure(trimmed); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, apiErr(http.StatusBadRequest, excSerialization, "request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, apiErr(http.StatusBadRequest, excSerialization, "request body has data after the JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, apiErr(http.StatusBadRequest, excSerialization, "request body must be a JSON object")
	}
	return obj, nil
}

// checkStructure scans the body once and rejects nesting beyond
// MaxJSONDepth and more than about MaxJSONElements elements (counted as
// containers plus separators).
func checkStructure(b []byte) error {
	depth, elems, inStr, esc := 0, 0, false, false
	for _, c := range b {
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
			if depth > MaxJSONDepth {
				return apiErr(http.StatusBadRequest, excSerialization, "request body nests deeper than %d levels", MaxJSONDepth)
			}
			elems++
		case ',':
			elems++
		case '}', ']':
			depth--
		}
		if elems > MaxJSONElements {
			return apiErr(http.StatusBadRequest, excSerialization, "request body has more than %d JSON elements", MaxJSONElements)
		}
	}
	return nil
}

func queryValue(member, loc string, s *model.Shape, m *model.Model, vals []string) (any, error) {
	if s.Type == "list" {
		ms := m.Shapes[s.Member.Shape]
		out := make([]any, 0, len(vals))
		for _, v := range vals {
			x, err := scalarFromString(member, loc, ms, v)
			if err != nil {
				return nil, err
			}
			out = append(out, x)
		}
		return out, nil
	}
	return scalarFromString(member, loc, s, vals[0])
}

func scalarFromString(member, loc string, s *model.Shape, v string) (any, error) {
	switch s.Type {
	case "integer", "long":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, invalidParam(member, "Invalid value for %s (query %q): %q is not an integer", member, loc, v)
		}
		// Canonical form: "+1" and "007" parse but are no JSON numbers.
		return json.Number(strconv.FormatInt(n, 10)), nil
	case "boolean":
		switch v {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, invalidParam(member, "Invalid value for %s (query %q): %q is not true or false", member, loc, v)
	case "timestamp":
		t, err := parseTimestamp(v)
		if err != nil {
			return nil, invalidParam(member, "Invalid value for %s (query %q): %q is not an ISO-8601 timestamp or epoch seconds", member, loc, v)
		}
		return epochNumber(t), nil
	case "double", "float":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, invalidParam(member, "Invalid value for %s (query %q): %q is not a number", member, loc, v)
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	}
	return v, nil
}

func parseTimestamp(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	bad := fmt.Errorf("bad timestamp %q", v)
	// Plain decimal epoch seconds are parsed exactly (no float rounding).
	if ip, fp, _ := strings.Cut(v, "."); ip != "" && len(fp) <= 9 && allDigits(ip) && (fp == "" || allDigits(fp)) && len(ip) <= 12 {
		sec, err := strconv.ParseInt(ip, 10, 64)
		if err != nil || sec > 253402300799 {
			return time.Time{}, bad
		}
		ns := int64(0)
		if fp != "" {
			ns, _ = strconv.ParseInt((fp + "000000000")[:9], 10, 64)
		}
		return time.Unix(sec, ns).UTC(), nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 253402300799 {
		return time.Time{}, bad
	}
	us := math.Round(f * 1e6) // exponent forms: microsecond precision
	return time.UnixMicro(int64(us)).UTC(), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func epochNumber(t time.Time) json.Number {
	return json.Number(strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64))
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "an unknown value"
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// validate checks v against shape and returns the normalised value
// (unknown structure members dropped, timestamps as epoch numbers).
func (d *decoder) validate(path, shapeName string, v any) (any, error) {
	s := d.m.Shapes[shapeName]
	where := path
	if where == "" {
		where = "the request"
	}
	switch s.Type {
	case "structure":
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, invalidParam(path, "Invalid value for %s: expected an object, got %s", where, describe(v))
		}
		out := map[string]any{}
		for _, req := range s.Required {
			x, ok := obj[req]
			if !ok || x == nil {
				return nil, missingParam(join(path, req))
			}
			if str, isStr := x.(string); isStr && str == "" {
				return nil, missingParam(join(path, req))
			}
		}
		for name, mem := range s.Members {
			x, ok := obj[name]
			if !ok || x == nil {
				continue
			}
			nv, err := d.validate(join(path, name), mem.Shape, x)
			if err != nil {
				return nil, err
			}
			out[name] = nv
		}
		return out, nil
	case "list":
		arr, ok := v.([]any)
		if !ok {
			return nil, invalidParam(path, "Invalid value for %s: expected a list, got %s", where, describe(v))
		}
		if err := checkLen(path, s, len(arr), "items"); err != nil {
			return nil, err
		}
		out := make([]any, 0, len(arr))
		for i, x := range arr {
			nv, err := d.validate(fmt.Sprintf("%s[%d]", path, i), s.Member.Shape, x)
			if err != nil {
				return nil, err
			}
			out = append(out, nv)
		}
		return out, nil
	case "map":
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, invalidParam(path, "Invalid value for %s: expected a map, got %s", where, describe(v))
		}
		if err := checkLen(path, s, len(obj), "entries"); err != nil {
			return nil, err
		}
		out := make(map[string]any, len(obj))
		for k, x := range obj {
			if _, err := d.validate(path+" key", s.Key.Shape, k); err != nil {
				return nil, err
			}
			nv, err := d.validate(fmt.Sprintf("%s[%q]", path, k), s.Value.Shape, x)
			if err != nil {
				return nil, err
			}
			out[k] = nv
		}
		return out, nil
	case "string":
		str, ok := v.(string)
		if !ok {
			return nil, invalidParam(path, "Invalid value for %s: expected a string, got %s", where, describe(v))
		}
		if s.EnumSet != nil && !s.EnumSet[str] {
			return nil, invalidParam(path, "Invalid value for %s: %q is not one of %s", where, str, strings.Join(s.Enum, ", "))
		}
		if err := checkLen(path, s, utf8.RuneCountInString(str), "characters"); err != nil {
			return nil, err
		}
		if s.Compiled != nil && !s.Compiled.MatchString(str) {
			return nil, invalidParam(path, "Invalid value for %s: %q does not match pattern %s", where, str, s.Pattern)
		}
		return str, nil
	case "integer", "long":
		n, ok := v.(json.Number)
		if !ok {
			return nil, invalidParam(path, "Invalid value for %s: expected an integer, got %s", where, describe(v))
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || (s.Type == "integer" && (i > math.MaxInt32 || i < math.MinInt32)) {
			return nil, invalidParam(path, "Invalid value for %s: %s is not a valid %s", where, n, s.Type)
		}
		if s.Min != nil && float64(i) < *s.Min {
			return nil, invalidParam(path, "Invalid value for %s: %d is less than the minimum %v", where, i, *s.Min)
		}
		if s.Max != nil && float64(i) > *s.Max {
			return nil, invalidParam(path, "Invalid value for %s: %d is greater than the maximum %v", where, i, *s.Max)
		}
		return n, nil
	case "double", "float":
		n, ok := v.(json.Number)
		if !ok {
			return nil, invalidParam(path, "Invalid value for %s: expected a number, got %s", where, describe(v))
		}
		if _, err := strconv.ParseFloat(string(n), 64); err != nil {
			return nil, invalidParam(path, "Invalid value for %s: %s is not a number", where, n)
		}
		return n, nil
	case "boolean":
		if _, ok := v.(bool); !ok {
			return nil, invalidParam(path, "Invalid value for %s: expected a boolean, got %s", where, describe(v))
		}
		return v, nil
	case "timestamp":
		switch x := v.(type) {
		case json.Number:
			t, err := parseTimestamp(string(x))
			if err != nil {
				return nil, invalidParam(path, "Invalid value for %s: %s is not a valid timestamp", where, x)
			}
			return epochNumber(t), nil
		case string:
			t, err := parseTimestamp(x)
			if err != nil {
				return nil, invalidParam(path, "Invalid value for %s: %q is not a valid timestamp", where, x)
			}
			return epochNumber(t), nil
		}
		return nil, invalidParam(path, "Invalid value for %s: expected a timestamp, got %s", where, describe(v))
	case "blob":
		if _, ok := v.(string); !ok {
			return nil, invalidParam(path, "Invalid value for %s: expected base64 text, got %s", where, describe(v))
		}
		return v, nil
	}
	return nil, invalidParam(path, "Invalid value for %s: unsupported shape type %s", where, s.Type)
}

func checkLen(path string, s *model.Shape, n int, unit string) error {
	if s.Min != nil && float64(n) < *s.Min {
		return invalidParam(path, "Invalid value for %s: has %d %s, fewer than the minimum %v", path, n, unit, *s.Min)
	}
	if s.Max != nil && float64(n) > *s.Max {
		return invalidParam(path, "Invalid value for %s: has %d %s, more than the maximum %v", path, n, unit, *s.Max)
	}
	return nil
}
