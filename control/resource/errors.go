package resource

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// FieldError is a problem with one field of a document. Error values are
// immutable once returned and safe for concurrent use.
type FieldError struct {
	// Path is the field path, e.g. "spec.rules[0].backendRefs[1].weight";
	// empty for a problem with the whole document.
	Path string
	// Reason says what is wrong, e.g. "must be >= 0, got -5".
	Reason string
}

// Error formats the error as "path: reason".
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Reason
	}
	return e.Path + ": " + e.Reason
}

// Error is a problem with one document of an input, or one object of an
// apply: it names the source, the document and the object when known.
type Error struct {
	Source    string // file name or "-"; may be empty
	Index     int    // 1-based document index; 0 when unknown
	Kind      Kind   // empty when unknown
	Namespace string
	Name      string
	Err       error // usually a *FieldError
}

// Error formats the error as
// "shop.yaml: document 3 (HTTPRoute default/catalog): spec.x: reason".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	if e.Index > 0 {
		b.WriteString("document ")
		b.WriteString(strconv.Itoa(e.Index))
		if d := e.describe(); d != "" {
			b.WriteString(" (" + d + ")")
		}
		b.WriteString(": ")
	} else if d := e.describe(); d != "" {
		b.WriteString(d + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) describe() string {
	switch {
	case e.Kind != "" && e.Name != "":
		return fmt.Sprintf("%s %s/%s", e.Kind, e.Namespace, e.Name)
	case e.Kind != "":
		return string(e.Kind)
	}
	return ""
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Errors flattens err (an errors.Join tree) into its leaves, in order.
func Errors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Errors(e)...)
		}
		return out
	}
	return []error{err}
}

// fieldErrs collects FieldErrors for one document.
type fieldErrs []*FieldError

func (f *fieldErrs) add(path, format string, args ...any) {
	*f = append(*f, &FieldError{Path: path, Reason: fmt.Sprintf(format, args...)})
}

// wrap turns the collected field errors into Errors about obj.
func (f fieldErrs) wrap(obj *Object) []error {
	out := make([]error, 0, len(f))
	for _, fe := range f {
		out = append(out, objectError(obj, fe))
	}
	return out
}

func objectError(obj *Object, err error) *Error {
	return &Error{Source: obj.Source, Index: obj.Index, Kind: obj.Kind, Namespace: obj.Namespace, Name: obj.Name, Err: err}
}

// join is errors.Join that keeps a nil result nil.
func join(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}
