package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Duration is a time.Duration written as a Go duration string such as
// "250ms", "1.5s" or "1h2m". The zero value means "not set" and is omitted
// when marshalled with omitzero. JSON numbers are rejected: a bare 5 is
// ambiguous (seconds? nanoseconds?).
type Duration struct {
	time.Duration
}

// D returns d as a Duration.
func D(d time.Duration) Duration { return Duration{Duration: d} }

// ParseDuration parses a duration string as time.ParseDuration does, with an
// error that names the expected format.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return Duration{}, fmt.Errorf("invalid duration %q: want a number with a unit (ns, us, ms, s, m, h), e.g. \"250ms\" or \"1m30s\"", s)
	}
	return Duration{Duration: d}, nil
}

// IsZero reports whether d is unset.
func (d Duration) IsZero() bool { return d.Duration == 0 }

// Or returns d, or def when d is unset.
func (d Duration) Or(def time.Duration) time.Duration {
	if d.Duration == 0 {
		return def
	}
	return d.Duration
}

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.Duration.String())
}

// UnmarshalJSON reads a duration string; null leaves d unchanged.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) == 0 || b[0] != '"' {
		return fmt.Errorf("invalid duration %s: want a string such as \"250ms\"", truncate(b))
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("invalid duration %s: %w", truncate(b), err)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
