package resource

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Decode reads every object of a multi-document YAML or JSON input. Documents
// are separated by "---" lines; empty documents are skipped; a JSON input
// may also be a stream of objects, and a document of kind List (as written
// by `weft get -o yaml`) contributes its items.
//
// Decoding is strict: unknown fields, wrong types and duplicate keys are
// errors. Every error is an *Error naming source, the 1-based document
// index, the object when known, the field path and the reason; all of them
// are returned together (errors.Join). On success each object has its
// namespace ("default" when unset) and the weft kinds' defaults applied.
//
// Decode is safe for concurrent use.
func Decode(source string, data []byte) ([]Object, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, &Error{Source: source, Err: err}
	}
	var (
		objs []Object
		errs []error
	)
	for i, d := range docs {
		index := i + 1
		m, raw, err := parseDocument(d)
		if err != nil {
			errs = append(errs, &Error{Source: source, Index: index, Err: err})
			continue
		}
		if m == nil {
			continue // empty document
		}
		if k, _ := m["kind"].(string); k == listKind {
			o, e := decodeList(source, index, m)
			objs, errs = append(objs, o...), append(errs, e...)
			continue
		}
		o, e := decodeObject(source, index, "", m, raw)
		if len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		objs = append(objs, o)
	}
	if err := join(errs); err != nil {
		return nil, err
	}
	return objs, nil
}

type rawDocument struct {
	data      []byte
	firstLine int // 1-based line of the document in the input
	json      bool
}

// splitDocuments cuts the input into documents at "---" lines, or reads a
// stream of JSON values when the input starts with '{'.
func splitDocuments(data []byte) ([]rawDocument, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		if docs, err := splitJSON(trimmed); err == nil {
			return docs, nil
		}
		// Not a JSON stream: YAML flow style, or broken; let YAML report.
	}
	var (
		docs  []rawDocument
		cur   bytes.Buffer
		start = 1
		line  = 0
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	for sc.Scan() {
		line++
		l := sc.Bytes()
		if isSeparator(l) {
			docs = append(docs, rawDocument{data: bytes.Clone(cur.Bytes()), firstLine: start})
			cur.Reset()
			start = line + 1
			if len(docs) > maxDocumentsPerDecode {
				return nil, fmt.Errorf("more than %d documents", maxDocumentsPerDecode)
			}
			continue
		}
		cur.Write(l)
		cur.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	docs = append(docs, rawDocument{data: cur.Bytes(), firstLine: start})
	return docs, nil
}

func isSeparator(l []byte) bool {
	if !bytes.HasPrefix(l, []byte("---")) {
		return false
	}
	rest := bytes.TrimSpace(l[3:])
	return len(rest) == 0 || rest[0] == '#'
}

func splitJSON(data []byte) ([]rawDocument, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var docs []rawDocument
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return docs, nil
		} else if err != nil {
			return nil, err
		}
		docs = append(docs, rawDocument{data: raw, json: true})
		if len(docs) > maxDocumentsPerDecode {
			return nil, fmt.Errorf("more than %d documents", maxDocumentsPerDecode)
		}
	}
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// parseDocument converts one document to JSON and then to a generic map. It
// returns a nil map for an empty document.
func parseDocument(d rawDocument) (map[string]any, []byte, error) {
	js := d.data
	if !d.json {
		if len(bytes.TrimSpace(stripComments(d.data))) == 0 {
			return nil, nil, nil
		}
		var err error
		js, err = yaml.YAMLToJSONStrict(d.data)
		if err != nil {
			// Line numbers from the YAML parser count from the document's
			// start; make them count from the file's.
			msg := yamlLineRE.ReplaceAllStringFunc(err.Error(), func(s string) string {
				n, _ := strconv.Atoi(s[len("line "):])
				return "line " + strconv.Itoa(n+d.firstLine-1)
			})
			msg = strings.TrimPrefix(strings.TrimPrefix(msg, "error converting YAML to JSON: "), "yaml: ")
			msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
			lines := strings.Split(msg, "\n")
			for i := range lines {
				lines[i] = strings.TrimSpace(lines[i])
			}
			return nil, nil, errors.New(strings.Join(lines, "; "))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if v == nil {
		return nil, nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("expected an object with apiVersion, kind, metadata and spec, got %s", describe(v))
	}
	return m, js, nil
}

// stripComments drops YAML comment lines so that a document of comments only
// counts as empty.
func stripComments(b []byte) []byte {
	var out bytes.Buffer
	for _, l := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out.Write(l)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

func decodeList(source string, index int, m map[string]any) ([]Object, []error) {
	var errs []error
	listErr := func(path, format string, args ...any) {
		errs = append(errs, &Error{Source: source, Index: index, Kind: listKind, Err: &FieldError{Path: path, Reason: fmt.Sprintf(format, args...)}})
	}
	for k, v := range m {
		switch k {
		case "apiVersion":
			if v != listAPIVersion {
				listErr("apiVersion", "must be %q for a List, got %s", listAPIVersion, describe(v))
			}
		case "kind", "metadata":
		case "items":
		default:
			listErr(k, "unknown field")
		}
	}
	items, ok := m["items"].([]any)
	if !ok {
		if m["items"] != nil {
			listErr("items", "expected a list, got %s", describe(m["items"]))
		}
		return nil, errs
	}
	var objs []Object
	for i, it := range items {
		prefix := "items[" + strconv.Itoa(i) + "]"
		im, ok := it.(map[string]any)
		if !ok {
			listErr(prefix, "expected an object, got %s", describe(it))
			continue
		}
		raw, err := json.Marshal(im)
		if err != nil {
			listErr(prefix, "%v", err)
			continue
		}
		o, e := decodeObject(source, index, prefix, im, raw)
		if len(e) > 0 {
			errs = append(errs, e...)
			continue
		}
		objs = append(objs, o)
	}
	return objs, errs
}

// decodeObject checks one document strictly against its kind's type and
// decodes it. prefix is prepended to field paths (for List items).
func decodeObject(source string, index int, prefix string, m map[string]any, raw []byte) (Object, []error) {
	obj := Object{Source: source, Index: index}
	if md, ok := m["metadata"].(map[string]any); ok {
		obj.Name, _ = md["name"].(string)
		obj.Namespace, _ = md["namespace"].(string)
	}
	if obj.Namespace == "" {
		obj.Namespace = DefaultNamespace
	}
	var fe fieldErrs
	path := func(p string) string {
		if prefix == "" {
			return p
		}
		return prefix + "." + p
	}
	kind, kok := m["kind"].(string)
	apiVersion, aok := m["apiVersion"].(string)
	switch {
	case m["kind"] == nil:
		fe.add(path("kind"), "required (one of %s)", strings.Join(kindList(), ", "))
	case !kok:
		fe.add(path("kind"), "expected a string, got %s", describe(m["kind"]))
	}
	switch {
	case m["apiVersion"] == nil:
		fe.add(path("apiVersion"), "required")
	case !aok:
		fe.add(path("apiVersion"), "expected a string, got %s", describe(m["apiVersion"]))
	}
	if len(fe) > 0 {
		return obj, fe.wrap(&obj)
	}
	ki, ok := InfoFor(Kind(kind))
	if !ok {
		fe.add(path("kind"), "unknown kind %q (known: %s)", kind, strings.Join(kindList(), ", "))
		return obj, fe.wrap(&obj)
	}
	obj.Kind = ki.Kind
	if !ki.servesVersion(apiVersion) {
		fe.add(path("apiVersion"), "%q is not served for kind %s; use %s", apiVersion, kind, strings.Join(ki.APIVersions, " or "))
		return obj, fe.wrap(&obj)
	}
	obj.APIVersion = apiVersion

	typed := ki.newObject()
	c := checker{}
	c.check(prefix, m, typeOf(typed))
	if len(c.errs) > 0 {
		return obj, c.errs.wrap(&obj)
	}
	if _, ok := m["spec"]; !ok {
		fe.add(path("spec"), "required")
		return obj, fe.wrap(&obj)
	}
	if err := json.Unmarshal(raw, typed); err != nil {
		fe.add(prefix, "%s", cleanUnmarshalError(err))
		return obj, fe.wrap(&obj)
	}
	meta, spec := ki.parts(typed)
	if meta.Namespace == "" {
		meta.Namespace = DefaultNamespace
	}
	if ki.defaults != nil {
		ki.defaults(typed)
	}
	obj.Namespace = meta.Namespace
	obj.Name = meta.Name
	obj.ResourceVersion = meta.ResourceVersion
	obj.Labels = meta.Labels
	obj.Annotations = meta.Annotations
	obj.Spec = spec
	obj.Raw = raw
	return obj, nil
}

func kindList() []string {
	out := make([]string, 0, len(kinds))
	for _, ki := range kinds {
		out = append(out, string(ki.Kind))
	}
	return out
}
