package resource

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The strict checker walks a generic JSON value (as decoded with UseNumber)
// alongside the Go type it will be unmarshalled into, and reports unknown
// fields and wrong types with their paths. encoding/json stops at the first
// problem and its unknown-field error has no path; this reports all of them.
// Field names are matched case-sensitively, unlike encoding/json.

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// maxErrorsPerDocument bounds the errors reported for one document so that
// a garbage input does not produce megabytes of messages.
const maxErrorsPerDocument = 50

type structField struct {
	typ reflect.Type
}

var fieldCache sync.Map // reflect.Type -> map[string]structField

// fieldsOf returns the JSON fields of struct type t, including those promoted
// from embedded structs, as encoding/json sees them.
func fieldsOf(t reflect.Type) map[string]structField {
	if v, ok := fieldCache.Load(t); ok {
		return v.(map[string]structField)
	}
	m := map[string]structField{}
	collectFields(t, m, map[reflect.Type]bool{})
	fieldCache.Store(t, m)
	return m
}

func collectFields(t reflect.Type, m map[string]structField, seen map[reflect.Type]bool) {
	if seen[t] {
		return
	}
	seen[t] = true
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, m, seen)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := m[name]; !dup {
			m[name] = structField{typ: f.Type}
		}
	}
}

// checker accumulates errors of one document.
type checker struct {
	errs fieldErrs
}

func (c *checker) add(path, format string, args ...any) {
	if len(c.errs) >= maxErrorsPerDocument {
		return
	}
	if len(c.errs) == maxErrorsPerDocument-1 {
		c.errs.add("", "too many errors, giving up on this document")
		return
	}
	c.errs.add(path, format, args...)
}

func (c *checker) check(path string, v any, t reflect.Type) {
	if v == nil { // JSON null: encoding/json leaves the field unset
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		b, err := json.Marshal(v)
		if err != nil {
			c.add(path, "%v", err)
			return
		}
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b); err != nil {
			c.add(path, "%s", cleanUnmarshalError(err))
		}
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		s, ok := v.(string)
		if !ok {
			c.add(path, "expected a string, got %s", describe(v))
			return
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			c.add(path, "%s", cleanUnmarshalError(err))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			c.add(path, "expected an object, got %s", describe(v))
			return
		}
		fields := fieldsOf(t)
		for _, k := range sortedKeys(m) {
			f, ok := fields[k]
			if !ok {
				c.add(join2(path, k), "unknown field%s", suggest(k, fields))
				continue
			}
			c.check(join2(path, k), m[k], f.typ)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			c.add(path, "expected an object, got %s", describe(v))
			return
		}
		kt := t.Key()
		for _, k := range sortedKeys(m) {
			if kt.Kind() != reflect.String {
				if _, err := strconv.ParseInt(k, 10, 64); err != nil {
					c.add(mapPath(path, k), "map key must be an integer")
					continue
				}
			}
			c.check(mapPath(path, k), m[k], t.Elem())
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			if _, ok := v.(string); !ok {
				c.add(path, "expected a base64 string, got %s", describe(v))
			}
			return
		}
		l, ok := v.([]any)
		if !ok {
			c.add(path, "expected a list, got %s", describe(v))
			return
		}
		if t.Kind() == reflect.Array && len(l) > t.Len() {
			c.add(path, "at most %d items, got %d", t.Len(), len(l))
		}
		for i, e := range l {
			c.check(path+"["+strconv.Itoa(i)+"]", e, t.Elem())
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			c.add(path, "expected a string, got %s", describe(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			c.add(path, "expected true or false, got %s", describe(v))
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			c.add(path, "expected an integer, got %s", describe(v))
			return
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			if strings.ContainsAny(string(n), ".eE") {
				c.add(path, "expected an integer, got %s", n)
			} else {
				c.add(path, "%s is out of range for a %d-bit integer", n, t.Bits())
			}
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			c.add(path, "expected a non-negative integer, got %s", describe(v))
			return
		}
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			c.add(path, "expected a non-negative %d-bit integer, got %s", t.Bits(), n)
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			c.add(path, "expected a number, got %s", describe(v))
		}
	case reflect.Interface:
		// anything goes
	default:
		c.add(path, "unsupported field type %s", t)
	}
}

// cleanUnmarshalError strips encoding/json's Go type names from an error.
func cleanUnmarshalError(err error) string {
	var ute *json.UnmarshalTypeError
	if ok := asUTE(err, &ute); ok {
		return fmt.Sprintf("expected %s, got %s", goTypeWord(ute.Type), ute.Value)
	}
	return err.Error()
}

func asUTE(err error, target **json.UnmarshalTypeError) bool {
	u, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*target = u
	}
	return ok
}

func goTypeWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

// describe names the JSON type of v and shows a short form of its value.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return "string " + strconv.Quote(x)
	case json.Number:
		return "number " + string(x)
	case bool:
		return "boolean " + strconv.FormatBool(x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

func join2(path, k string) string {
	if !identRE.MatchString(k) {
		return mapPath(path, k)
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

func mapPath(path, k string) string {
	if identRE.MatchString(k) {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	return path + "[" + strconv.Quote(k) + "]"
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// suggest proposes a known field for a misspelt one: same letters in
// another case, or one edit away.
func suggest(k string, fields map[string]structField) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	best, bestDist := "", 3
	for _, name := range names {
		if strings.EqualFold(name, k) {
			return fmt.Sprintf(" (did you mean %q?)", name)
		}
		if d := editDistance(strings.ToLower(k), strings.ToLower(name), bestDist); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" && len(k) > 3 {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// editDistance is the Levenshtein distance of a and b, or max when it is at
// least max.
func editDistance(a, b string, max int) int {
	if d := len(a) - len(b); d >= max || -d >= max {
		return max
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= max {
			return max
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], max)
}

// typeOf returns the element type of a pointer value.
func typeOf(p any) reflect.Type { return reflect.TypeOf(p).Elem() }
