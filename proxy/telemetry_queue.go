package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// The record queue takes finished requests off the request path: finish
// copies a doneRec into the batch being filled (one lock, no allocation
// once the batch's slices have grown), and the telemetry goroutine swaps
// the batch out, renders the access records (the local access log gets
// one write per batch) and encodes the OTLP spans and log records for the
// sink.

// Bounds of the record queue.
const (
	// recBatchMax wakes the telemetry goroutine at once when this many
	// records wait.
	recBatchMax = 512
	// recQueueMax bounds the records waiting; beyond it records are
	// dropped (and counted in the sink's weft_telemetry_dropped_total).
	recQueueMax = 8192
	// recArenaMax bounds the bytes of the copied request strings waiting.
	recArenaMax = 8 << 20
	// recLinger is how long the goroutine waits for more records after the
	// first one of a batch: a record reaches the log and the sink within
	// about this long.
	recLinger = 20 * time.Millisecond
)

// recBatch is a batch of finished requests and the bytes of their copied
// strings.
type recBatch struct {
	recs  []doneRec
	spans int // records in recs with bitSpan
	arena []byte
}

// recQueue is the bounded queue between request goroutines and the
// telemetry goroutine. Safe for concurrent use.
type recQueue struct {
	mu     sync.Mutex
	cur    *recBatch // being filled
	spare  *recBatch // encoded, ready to be filled again
	closed bool

	wake chan struct{} // capacity 1: the batch got its first record
	full chan struct{} // capacity 1: the batch holds recBatchMax records
	stop chan struct{} // closed by close
	done chan struct{} // closed when the goroutine has drained the queue

	dropped atomic.Uint64 // records dropped for a full queue
}

func newRecQueue() *recQueue {
	return &recQueue{
		cur:  &recBatch{},
		wake: make(chan struct{}, 1),
		full: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// put copies d (and the strings that may view connection buffers) into
// the queue; it reports false when the record was dropped.
func (q *recQueue) put(d *doneRec) bool {
	q.mu.Lock()
	b := q.cur
	if q.closed || len(b.recs) >= recQueueMax || len(b.arena) >= recArenaMax {
		q.mu.Unlock()
		q.dropped.Add(1)
		return false
	}
	b.recs = append(b.recs, *d)
	b.arena = b.recs[len(b.recs)-1].ownStrings(b.arena)
	if d.bits&bitSpan != 0 {
		b.spans++
	}
	n := len(b.recs)
	q.mu.Unlock()
	switch n {
	case 1:
		signal(q.wake)
	case recBatchMax:
		signal(q.full)
	}
	return true
}

// take swaps out the batch being filled.
func (q *recQueue) take() *recBatch {
	q.mu.Lock()
	b := q.cur
	next := q.spare
	if next == nil {
		next = &recBatch{}
	}
	q.cur, q.spare = next, nil
	q.mu.Unlock()
	return b
}

// recycle returns an encoded batch for reuse.
func (q *recQueue) recycle(b *recBatch) {
	clear(b.recs) // drop the references to strings
	b.recs, b.spans, b.arena = b.recs[:0], 0, b.arena[:0]
	q.mu.Lock()
	q.spare = b
	q.mu.Unlock()
}

// run is the telemetry goroutine: it encodes batches with enc until close,
// then encodes what is left and returns.
func (q *recQueue) run(enc func(*recBatch)) {
	defer close(q.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		if b := q.take(); len(b.recs) > 0 {
			enc(b)
			q.recycle(b)
		} else {
			q.recycle(b)
		}
	}
	for {
		select {
		case <-q.wake:
		case <-q.stop:
			flush()
			return
		}
		timer.Reset(recLinger)
		select {
		case <-q.full:
		case <-timer.C:
		case <-q.stop:
			timer.Stop()
			flush()
			return
		}
		timer.Stop()
		flush()
	}
}

// close stops the goroutine once it has encoded what is queued; records
// put afterwards are dropped. It waits for the goroutine. Idempotent.
func (q *recQueue) close() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		<-q.done
		return
	}
	q.closed = true
	q.mu.Unlock()
	close(q.stop)
	<-q.done
}

// recEncoder holds the telemetry goroutine's buffers. Not safe for
// concurrent use.
type recEncoder struct {
	json, file, spans, logs, scratch []byte
}

// encode renders and hands out one batch: the access log gets all its
// lines in one write, the sink its spans and log records in one call each.
// When the sink's collector takes spans that carry access records, a
// traced request's record goes in its span and gets no log record (and,
// without an access log, is never rendered as JSON here).
func (t *telemetry) encode(b *recBatch) {
	e := &t.enc
	e.file, e.spans, e.logs = e.file[:0], e.spans[:0], e.logs[:0]
	carry := t.sink != nil && t.sink.SpansCarryRecords()
	logs := 0
	for i := range b.recs {
		d := &b.recs[i]
		span := t.sink != nil && d.bits&bitSpan != 0
		needLog := t.sink != nil && !(carry && span)
		if t.log != nil || needLog {
			e.json = appendRecord(e.json[:0], d)
		}
		if t.log != nil {
			e.file = append(append(e.file, e.json...), '\n')
		}
		if needLog {
			e.logs = appendLogRecord(e.logs, d, e.json)
			logs++
		}
		if span {
			e.spans = appendSpan(e.spans, d, &e.scratch, carry)
		}
	}
	if t.log != nil {
		t.log.Write(e.file) // an access log that fails loses records; nothing to tell
	}
	if t.sink != nil {
		if logs > 0 {
			if err := t.sink.ExportLogs(e.logs, logs); err != nil {
				t.sink.DropRecords(0, logs)
			}
		}
		if b.spans > 0 {
			if err := t.sink.ExportSpans(e.spans, b.spans, carry); err != nil {
				t.sink.DropRecords(b.spans, 0)
				if carry {
					t.sink.DropRecords(0, b.spans)
				}
			}
		}
	}
	// Keep the buffers of a normal batch, not those of a rare huge one.
	for _, p := range []*[]byte{&e.file, &e.spans, &e.logs} {
		if cap(*p) > 4<<20 {
			*p = nil
		}
	}
}
