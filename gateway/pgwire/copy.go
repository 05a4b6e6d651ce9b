package pgwire

import (
	"encoding/binary"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/jackc/pgx/v5/pgproto3"
)

// copyOut answers COPY (query) TO STDOUT, what psql's \copy sends: the
// rows in COPY's text format (tab-separated, \N for NULL) or as CSV,
// streamed in CopyData messages as the engine produces them.
func (se *session) copyOut(st *statement) error {
	o, err := se.start(st.query, nil)
	if err != nil {
		return err
	}
	formats := make([]uint16, len(o.cols))
	se.be.Send(&pgproto3.CopyOutResponse{OverallFormat: 0, ColumnFormatCodes: formats})
	var field []byte
	encode := func(buf []byte, rec arrow.RecordBatch, row int) ([]byte, error) {
		start := len(buf)
		buf = append(buf, 'd', 0, 0, 0, 0)
		for c := range o.cols {
			if c > 0 {
				if st.csv {
					buf = append(buf, ',')
				} else {
					buf = append(buf, '\t')
				}
			}
			col := rec.Column(c)
			if col.IsNull(row) {
				if !st.csv {
					buf = append(buf, `\N`...)
				}
				continue
			}
			field = appendText(field[:0], col, row)
			if st.csv {
				buf = appendCSV(buf, field)
			} else {
				buf = appendCopyText(buf, field)
			}
		}
		buf = append(buf, '\n')
		binary.BigEndian.PutUint32(buf[start+1:], uint32(len(buf)-start-1))
		return buf, nil
	}
	if st.header && st.csv {
		line := []byte{}
		for i, c := range o.cols {
			if i > 0 {
				line = append(line, ',')
			}
			line = appendCSV(line, []byte(c.name))
		}
		line = append(line, '\n')
		se.be.Send(&pgproto3.CopyData{Data: line})
	}
	n, _, err := se.sendRows(o, o.cols, nil, 0, encode)
	if err != nil {
		o.close(err)
		return withID(err, o.queryID)
	}
	se.be.Send(&pgproto3.CopyDone{})
	se.finish(o, "COPY "+strconv.FormatInt(n, 10))
	return nil
}

// appendCopyText escapes a value for COPY's text format.
func appendCopyText(buf, v []byte) []byte {
	for _, c := range v {
		switch c {
		case '\\':
			buf = append(buf, `\\`...)
		case '\t':
			buf = append(buf, `\t`...)
		case '\n':
			buf = append(buf, `\n`...)
		case '\r':
			buf = append(buf, `\r`...)
		default:
			buf = append(buf, c)
		}
	}
	return buf
}

// appendCSV quotes a value for CSV where it needs it.
func appendCSV(buf, v []byte) []byte {
	quote := len(v) == 0
	for _, c := range v {
		if c == ',' || c == '"' || c == '\n' || c == '\r' {
			quote = true
			break
		}
	}
	if !quote {
		return append(buf, v...)
	}
	buf = append(buf, '"')
	for _, c := range v {
		if c == '"' {
			buf = append(buf, '"')
		}
		buf = append(buf, c)
	}
	return append(buf, '"')
}
