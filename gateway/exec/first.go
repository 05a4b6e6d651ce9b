package exec

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// firstBatch reads a result's first batch before the result is handed on,
// so a query that fails at once (a conversion error, a division by zero)
// fails with its own status before any row is sent; later batches stream
// as DuckDB produces them.
func firstBatch(r array.RecordReader, err error) (array.RecordReader, error) {
	if err != nil {
		return nil, err
	}
	p := &peeked{RecordReader: r, has: r.Next(), first: true}
	if !p.has {
		if err := r.Err(); err != nil {
			r.Release()
			return nil, err
		}
	}
	return p, nil
}

// peeked replays the batch firstBatch read.
type peeked struct {
	array.RecordReader
	has, first bool
}

func (p *peeked) Next() bool {
	if p.first {
		p.first = false
		return p.has
	}
	return p.RecordReader.Next()
}

func (p *peeked) RecordBatch() arrow.RecordBatch { return p.RecordReader.RecordBatch() }

// Record is the deprecated name of RecordBatch.
func (p *peeked) Record() arrow.RecordBatch { return p.RecordReader.RecordBatch() }
