package up

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func texts(lines []Line) []string {
	out := []string{}
	for _, l := range lines {
		out = append(out, l.Text)
	}
	return out
}

func TestLogSinkLines(t *testing.T) {
	long := strings.Repeat("x", maxLineBytes)
	tests := []struct {
		name   string
		writes []string
		keep   int
		want   []string
	}{
		{name: "lines", writes: []string{"a\nb\n"}, keep: 10, want: []string{"a", "b"}},
		{name: "partial joined", writes: []string{"he", "llo\nwor", "ld\n"}, keep: 10, want: []string{"hello", "world"}},
		{name: "partial kept back", writes: []string{"a\nb"}, keep: 10, want: []string{"a"}},
		{name: "crlf", writes: []string{"a\r\n"}, keep: 10, want: []string{"a"}},
		{name: "empty lines", writes: []string{"\n\n"}, keep: 10, want: []string{"", ""}},
		{name: "ring keeps the last", writes: []string{"1\n2\n3\n4\n5\n"}, keep: 3, want: []string{"3", "4", "5"}},
		{name: "long line split", writes: []string{long + "yz\n"}, keep: 10, want: []string{long, "yz"}},
		{name: "long partial split", writes: []string{long, "yz"}, keep: 10, want: []string{long}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewLogSink("", tc.keep, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.writes {
				if n, err := s.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			lines, next, _ := s.Tail(-1)
			if got := strings.Join(texts(lines), "|"); got != strings.Join(tc.want, "|") {
				t.Errorf("lines %q, want %q", got, strings.Join(tc.want, "|"))
			}
			if len(lines) > 0 && lines[len(lines)-1].Seq != next-1 {
				t.Errorf("last seq %d, next %d", lines[len(lines)-1].Seq, next)
			}
		})
	}
}

func TestLogSinkSinceAndNotify(t *testing.T) {
	now := time.Unix(100, 0)
	s, _ := NewLogSink("", 3, 0, func() time.Time { return now })
	_, next, ch := s.Since(0)
	if next != 0 {
		t.Fatalf("next = %d", next)
	}
	s.Write([]byte("no newline yet"))
	select {
	case <-ch:
		t.Fatal("notified without a complete line")
	default:
	}
	s.Write([]byte("\nb\nc\nd\n"))
	select {
	case <-ch:
	default:
		t.Fatal("not notified")
	}
	lines, next, _ := s.Since(0) // the oldest line was dropped
	if got := strings.Join(texts(lines), ","); got != "b,c,d" || next != 4 || lines[0].Seq != 1 || !lines[0].Time.Equal(now) {
		t.Errorf("Since(0) = %q next %d first %+v", got, next, lines[0])
	}
	lines, _, _ = s.Since(3)
	if got := strings.Join(texts(lines), ","); got != "d" {
		t.Errorf("Since(3) = %q", got)
	}
	lines, _, _ = s.Tail(2)
	if got := strings.Join(texts(lines), ","); got != "c,d" {
		t.Errorf("Tail(2) = %q", got)
	}
	if lines, _, _ = s.Tail(0); len(lines) != 0 {
		t.Errorf("Tail(0) = %v", lines)
	}
	s.Write([]byte("partial"))
	s.Close()
	lines, _, _ = s.Tail(1)
	if got := strings.Join(texts(lines), ","); got != "partial" {
		t.Errorf("after Close: %q", got)
	}
	s.Write([]byte("dropped\n"))
	if lines, _, _ = s.Tail(1); lines[0].Text != "partial" {
		t.Errorf("write after Close kept: %v", lines)
	}
}

func TestLogSinkFileRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	s, err := NewLogSink(path, 10, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("12345\n"))
	s.Write([]byte("6789\n")) // 11 bytes would pass the bound: rotate first
	s.Write([]byte("ab\n"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if string(old) != "12345\n" || string(cur) != "6789\nab\n" {
		t.Errorf("file %q, rotated %q", cur, old)
	}
	// Reopening appends.
	s, _ = NewLogSink(path, 10, 100, nil)
	s.Write([]byte("more\n"))
	s.Close()
	if cur, _ := os.ReadFile(path); string(cur) != "6789\nab\nmore\n" {
		t.Errorf("after reopen: %q", cur)
	}
	if _, err := NewLogSink(filepath.Join(t.TempDir(), "no", "dir.log"), 1, 1, nil); err == nil || !strings.Contains(err.Error(), "log file: open") {
		t.Errorf("bad path: %v", err)
	}
}

// FuzzLogSink checks that whatever the output and however it is cut into
// writes, the lines read back are the input's lines.
func FuzzLogSink(f *testing.F) {
	f.Add([]byte("a\nb\n"), uint8(1))
	f.Add([]byte("\n\n\nx"), uint8(3))
	f.Add(bytes.Repeat([]byte("y"), maxLineBytes+5), uint8(200))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		if bytes.ContainsRune(data, '\r') {
			return
		}
		s, _ := NewLogSink("", len(data)+1, 0, nil)
		step := int(cut) + 1
		for i := 0; i < len(data); i += step {
			s.Write(data[i:min(i+step, len(data))])
		}
		s.Close()
		lines, _, _ := s.Tail(-1)
		var got bytes.Buffer
		for _, l := range lines {
			if len(l.Text) > maxLineBytes {
				t.Fatalf("line of %d bytes", len(l.Text))
			}
			got.WriteString(l.Text)
		}
		if want := bytes.ReplaceAll(data, []byte("\n"), nil); !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("lines %q, want %q", got.Bytes(), want)
		}
	})
}

func BenchmarkLogSinkWrite(b *testing.B) {
	s, _ := NewLogSink("", 1000, 0, nil)
	line := []byte(`{"time":"2026-01-01T00:00:00Z","level":"INFO","msg":"request","path":"/api/products","status":200}` + "\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		s.Write(line)
	}
}
