package gateway

import "github.com/apache/arrow-go/v18/arrow"

// RecordBytes is the size of a batch's Arrow buffers, its columns'
// children included: what a batch weighs in memory and on the wire before
// a door's encoding.
func RecordBytes(rec arrow.RecordBatch) int64 {
	var n int64
	for _, c := range rec.Columns() {
		n += dataBytes(c.Data())
	}
	return n
}

func dataBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	return n
}
