package telemetry

// queue is a FIFO that grows by doubling up to its bound; pushing onto a
// full queue evicts the oldest element. It is not safe for concurrent use.
type queue[T any] struct {
	buf   []T
	head  int // index of the oldest element
	n     int
	limit int
}

func newQueue[T any](limit int) *queue[T] { return &queue[T]{limit: limit} }

// push appends v; when the queue was full it returns the evicted oldest
// element and true.
func (q *queue[T]) push(v T) (evicted T, ok bool) {
	if q.n == q.limit {
		evicted, ok = q.buf[q.head], true
		q.buf[q.head] = v
		q.head = (q.head + 1) % len(q.buf)
		return evicted, ok
	}
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
	return evicted, false
}

func (q *queue[T]) grow() {
	size := min(max(2*len(q.buf), 64), q.limit)
	buf := make([]T, size)
	for i := range q.n {
		buf[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = buf, 0
}

// front returns the oldest element.
func (q *queue[T]) front() (T, bool) {
	var zero T
	if q.n == 0 {
		return zero, false
	}
	return q.buf[q.head], true
}

// pop removes the oldest element.
func (q *queue[T]) pop() (T, bool) {
	var zero T
	if q.n == 0 {
		return zero, false
	}
	v := q.buf[q.head]
	q.buf[q.head] = zero
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return v, true
}

// popWhile removes the oldest elements as long as old says so.
func (q *queue[T]) popWhile(old func(*T) bool) {
	for q.n > 0 && old(&q.buf[q.head]) {
		q.pop()
	}
}

// at returns the i-th oldest element (0 is the oldest).
func (q *queue[T]) at(i int) T { return q.buf[(q.head+i)%len(q.buf)] }

// ptr points at the i-th oldest element, which stays valid until the
// next push or pop.
func (q *queue[T]) ptr(i int) *T { return &q.buf[(q.head+i)%len(q.buf)] }

func (q *queue[T]) len() int { return q.n }
