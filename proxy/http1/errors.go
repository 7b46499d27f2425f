package http1

import (
	"errors"
	"strconv"
)

var (
	// ErrMalformed reports a message that violates HTTP/1.1 syntax or
	// framing rules. A proxy answers a malformed request with 400 and a
	// malformed response with 502.
	ErrMalformed = errors.New("http1: malformed message")

	// ErrHeaderTooLarge reports a head over the byte limit or with too many
	// fields. A proxy answers 431.
	ErrHeaderTooLarge = errors.New("http1: header too large")

	// ErrBodyWrite marks an error returned by the destination writer during
	// CopyBody, so a proxy can tell a failed peer on the write side from a
	// failed read side.
	ErrBodyWrite = errors.New("http1: write body")
)

// ParseError is the error returned for a rejected head or body. It wraps
// ErrMalformed or ErrHeaderTooLarge (use errors.Is) and names the reason and,
// for heads, the 1-based line where parsing failed (0 when unknown).
// ParseError values are immutable.
type ParseError struct {
	Kind   error  // ErrMalformed or ErrHeaderTooLarge
	Reason string // lower-case reason, e.g. "whitespace before colon"
	Line   int    // 1-based line of the head, 0 if not applicable
}

func (e *ParseError) Error() string {
	s := e.Kind.Error() + ": " + e.Reason
	if e.Line > 0 {
		s += " (line " + strconv.Itoa(e.Line) + ")"
	}
	return s
}

// Unwrap returns the error kind.
func (e *ParseError) Unwrap() error { return e.Kind }

func malformed(reason string, line int) error {
	return &ParseError{Kind: ErrMalformed, Reason: reason, Line: line}
}

func tooLarge(reason string) error {
	return &ParseError{Kind: ErrHeaderTooLarge, Reason: reason}
}
