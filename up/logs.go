package up

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Log defaults.
const (
	DefaultLogLines    = 1000
	DefaultLogFileSize = 10 << 20
	maxLineBytes       = 16 << 10
)

// Line is one line of a process's output.
type Line struct {
	// Seq numbers the lines of one log from 0; it is never reused.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Text string    `json:"text"`
}

// LogSink keeps the output of one process (stdout and stderr together,
// across restarts): the last lines in memory for the API and everything in a
// file that is rotated once (to <path>.1) when it reaches its size bound.
// Lines longer than 16 KiB are split. It is safe for concurrent use.
type LogSink struct {
	now     func() time.Time
	maxSize int64

	mu      sync.Mutex
	path    string
	file    *os.File
	size    int64
	fileErr error
	partial []byte
	ring    []Line
	start   int    // index of the oldest line in ring
	next    uint64 // Seq of the next line
	notify  chan struct{}
	closed  bool
}

// NewLogSink returns a sink keeping lines lines in memory and writing to
// path (none when path is ""), rotated at maxSize bytes.
func NewLogSink(path string, lines int, maxSize int64, now func() time.Time) (*LogSink, error) {
	if lines <= 0 {
		lines = DefaultLogLines
	}
	if maxSize <= 0 {
		maxSize = DefaultLogFileSize
	}
	if now == nil {
		now = time.Now
	}
	s := &LogSink{now: now, maxSize: maxSize, path: path, ring: make([]Line, 0, lines), notify: make(chan struct{})}
	if path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("log file: %w", err)
		}
		s.file, s.size = f, st.Size()
	}
	return s, nil
}

// Write appends output; it never fails (a broken log file is reported by
// Err and the in-memory lines go on).
func (s *LogSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return len(p), nil
	}
	s.writeFile(p)
	added := false
	data := p
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			s.partial = append(s.partial, data...)
			for len(s.partial) >= maxLineBytes {
				s.add(s.partial[:maxLineBytes])
				s.partial = append(s.partial[:0], s.partial[maxLineBytes:]...)
				added = true
			}
			break
		}
		line := data[:i]
		if len(s.partial) > 0 {
			line = append(s.partial, line...)
			s.partial = s.partial[:0]
		}
		for len(line) > maxLineBytes {
			s.add(line[:maxLineBytes])
			line = line[maxLineBytes:]
		}
		s.add(bytes.TrimSuffix(line, []byte("\r")))
		added = true
		data = data[i+1:]
	}
	if added {
		close(s.notify)
		s.notify = make(chan struct{})
	}
	return len(p), nil
}

// add appends one line to the ring. Caller holds s.mu.
func (s *LogSink) add(b []byte) {
	l := Line{Seq: s.next, Time: s.now(), Text: string(b)}
	s.next++
	if len(s.ring) < cap(s.ring) {
		s.ring = append(s.ring, l)
		return
	}
	s.ring[s.start] = l
	s.start = (s.start + 1) % len(s.ring)
}

// writeFile writes p to the file, rotating first when it would pass the
// bound. Caller holds s.mu.
func (s *LogSink) writeFile(p []byte) {
	if s.file == nil {
		return
	}
	if s.size > 0 && s.size+int64(len(p)) > s.maxSize {
		s.file.Close()
		s.file = nil
		if err := os.Rename(s.path, s.path+".1"); err != nil {
			s.fileErr = fmt.Errorf("rotate log file: %w", err)
			return
		}
		f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			s.fileErr = fmt.Errorf("rotate log file: %w", err)
			return
		}
		s.file, s.size = f, 0
	}
	n, err := s.file.Write(p)
	s.size += int64(n)
	if err != nil && s.fileErr == nil {
		s.fileErr = fmt.Errorf("write log file: %w", err)
	}
}

// Since returns the lines kept in memory with Seq >= from, the Seq to ask
// for next time, and a channel closed when a new line arrives.
func (s *LogSink) Since(from uint64) (lines []Line, next uint64, changed <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.ring)
	oldest := s.next - uint64(n)
	if from < oldest {
		from = oldest
	}
	for seq := from; seq < s.next; seq++ {
		lines = append(lines, s.ring[(s.start+int(seq-oldest))%n])
	}
	return lines, s.next, s.notify
}

// Tail returns the last n lines kept in memory (all when n < 0), with
// Since's other results.
func (s *LogSink) Tail(n int) ([]Line, uint64, <-chan struct{}) {
	s.mu.Lock()
	from := uint64(0)
	if n >= 0 && uint64(n) < s.next {
		from = s.next - uint64(n)
	}
	s.mu.Unlock()
	return s.Since(from)
}

// Path returns the log file's path ("" for none).
func (s *LogSink) Path() string { return s.path }

// Err returns the first error writing the log file, if any.
func (s *LogSink) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fileErr
}

// Close flushes a partial last line and closes the file. Writes after Close
// are dropped.
func (s *LogSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if len(s.partial) > 0 {
		s.add(s.partial)
		s.partial = nil
	}
	close(s.notify)
	s.notify = make(chan struct{})
	var err error
	if s.file != nil {
		err = s.file.Close()
	}
	return errors.Join(err, s.fileErr)
}

// streamLines splits one output stream of a program into lines: each
// complete line is written whole to sink (so that the lines of stdout and
// stderr, copied by two goroutines, never mix in it) and passed to emit. A
// partial last line is kept until its newline, or until Flush. It is safe
// for concurrent use.
type streamLines struct {
	sink io.Writer
	emit func(line string)

	mu      sync.Mutex
	partial []byte
}

// Write never fails: the sink does not.
func (w *streamLines) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data := p
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			w.partial = append(w.partial, data...)
			for len(w.partial) >= maxLineBytes {
				w.line(w.partial[:maxLineBytes])
				w.partial = append(w.partial[:0], w.partial[maxLineBytes:]...)
			}
			break
		}
		line := data[:i]
		if len(w.partial) > 0 {
			line = append(w.partial, line...)
			w.partial = w.partial[:0]
		}
		for len(line) > maxLineBytes {
			w.line(line[:maxLineBytes])
			line = line[maxLineBytes:]
		}
		w.line(line)
		data = data[i+1:]
	}
	return len(p), nil
}

// line passes one line on. Caller holds w.mu.
func (w *streamLines) line(b []byte) {
	w.sink.Write(append(b[:len(b):len(b)], '\n'))
	w.emit(string(bytes.TrimSuffix(b, []byte("\r"))))
}

// Flush passes on a partial last line.
func (w *streamLines) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.line(w.partial)
		w.partial = nil
	}
}
