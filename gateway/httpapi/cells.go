package httpapi

import (
	"encoding/base64"
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// cells appends the cells of one column, one row at a time, in one output
// format. It is chosen once per column and batch, so the per-cell work is
// the value's own formatting: no interface boxing, no reflection, no
// allocation (issue 12: json.Marshal of each boxed cell and csv.Writer's
// per-record strings held the text formats to 0.2-0.4M rows/s).
type cells func(dst []byte, i int) []byte

// textCells appends each cell's text form: what CSV holds (before quoting)
// and what JSON holds inside the quotes of a non-number. NULL is nothing.
func textCells(a arrow.Array) cells {
	body := textBody(a)
	return func(dst []byte, i int) []byte {
		if a.IsNull(i) {
			return dst
		}
		return body(dst, i)
	}
}

// textBody is textCells for a cell known not to be NULL.
func textBody(a arrow.Array) cells {
	switch a := a.(type) {
	case *array.String:
		return func(dst []byte, i int) []byte { return append(dst, a.Value(i)...) }
	case *array.Decimal128:
		scale := a.DataType().(*arrow.Decimal128Type).Scale
		return func(dst []byte, i int) []byte { return appendDecimal(dst, a.Value(i), scale) }
	case *array.Date32:
		return func(dst []byte, i int) []byte { return appendDate(dst, a.Value(i)) }
	case *array.Timestamp:
		t := a.DataType().(*arrow.TimestampType)
		layout := "2006-01-02T15:04:05.999999"
		if t.TimeZone != "" {
			layout = "2006-01-02T15:04:05.999999Z07:00"
		}
		return func(dst []byte, i int) []byte { return a.Value(i).ToTime(t.Unit).UTC().AppendFormat(dst, layout) }
	case *array.Binary:
		return func(dst []byte, i int) []byte { return base64.StdEncoding.AppendEncode(dst, a.Value(i)) }
	case *array.Boolean:
		return func(dst []byte, i int) []byte { return strconv.AppendBool(dst, a.Value(i)) }
	case *array.Float64:
		return func(dst []byte, i int) []byte { return strconv.AppendFloat(dst, a.Value(i), 'g', -1, 64) }
	case *array.Int64:
		return func(dst []byte, i int) []byte { return strconv.AppendInt(dst, a.Value(i), 10) }
	case *array.Int32:
		return func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) }
	case array.ListLike, *array.Struct:
		return func(dst []byte, i int) []byte { return append(dst, mustJSON(a.GetOneForMarshal(i))...) }
	}
	return func(dst []byte, i int) []byte { return append(dst, a.ValueStr(i)...) }
}

// appendDate writes a date as YYYY-MM-DD.
func appendDate(dst []byte, d arrow.Date32) []byte {
	y, m, day := d.ToTime().Date()
	if y < 0 || y > 9999 {
		return d.ToTime().AppendFormat(dst, time.DateOnly)
	}
	return append(dst, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(m)/10), byte('0'+int(m)%10), '-', byte('0'+day/10), byte('0'+day%10))
}

// csvCells appends each cell as a CSV field: quoted where
// encoding/csv would quote it (a comma, quote, CR or LF inside, a leading
// space, or the field `\.`), with quotes doubled; NULL is an empty field.
func csvCells(a arrow.Array) cells {
	switch a.(type) {
	case *array.Decimal128, *array.Date32, *array.Timestamp, *array.Binary, *array.Boolean,
		*array.Float64, *array.Int64, *array.Int32:
		return textCells(a) // never holds a character that needs quoting
	}
	body := textBody(a)
	return func(dst []byte, i int) []byte {
		if a.IsNull(i) {
			return dst
		}
		start := len(dst)
		dst = body(dst, i)
		return quoteCSV(dst, start)
	}
}

// excelCells is csvCells for Excel (CSV with a byte order mark): a text
// cell that Excel would take for a formula (one that starts with =, +, -,
// @, a tab or a CR, as a council's supplier name may) is written with a
// leading apostrophe, which Excel shows as text and does not evaluate.
// Numbers, dates and the other typed columns are written as they are.
func excelCells(a arrow.Array) cells {
	plain := csvCells(a)
	if _, text := a.(*array.String); !text {
		if _, large := a.(*array.LargeString); !large {
			return plain
		}
	}
	body := textBody(a)
	return func(dst []byte, i int) []byte {
		if a.IsNull(i) {
			return dst
		}
		start := len(dst)
		dst = body(dst, i)
		if len(dst) > start && excelFormula(dst[start]) {
			dst = append(dst, 0)
			copy(dst[start+1:], dst[start:len(dst)-1])
			dst[start] = '\''
		}
		return quoteCSV(dst, start)
	}
}

// excelFormula reports whether Excel takes a cell starting with c for a
// formula.
func excelFormula(c byte) bool {
	switch c {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

// appendCSVField appends s as a CSV field.
func appendCSVField(dst []byte, s string) []byte {
	start := len(dst)
	return quoteCSV(append(dst, s...), start)
}

// quoteCSV quotes the field dst[start:] in place if it needs it.
func quoteCSV(dst []byte, start int) []byte {
	field := dst[start:]
	if !csvNeedsQuotes(field) {
		return dst
	}
	quotes := 0
	for _, c := range field {
		if c == '"' {
			quotes++
		}
	}
	n := len(field)
	for range quotes + 2 {
		dst = append(dst, 0)
	}
	field = dst[start:]
	// Move the field right, from its end, doubling quotes, then open it.
	w := len(field) - 1
	field[w] = '"'
	w--
	for r := n - 1; r >= 0; r-- {
		field[w] = field[r]
		w--
		if field[r] == '"' {
			field[w] = '"'
			w--
		}
	}
	field[0] = '"'
	return dst
}

// csvSpecial marks the bytes that make a field need quotes.
var csvSpecial = [256]bool{'\n': true, '\r': true, '"': true, ',': true}

// csvNeedsQuotes is encoding/csv's rule for the comma separator.
func csvNeedsQuotes(field []byte) bool {
	if len(field) == 0 {
		return false
	}
	if len(field) == 2 && field[0] == '\\' && field[1] == '.' {
		return true
	}
	for _, c := range field {
		if csvSpecial[c] {
			return true
		}
	}
	if field[0] < utf8.RuneSelf {
		return field[0] == ' ' || field[0] == '\t' || field[0] == '\v' || field[0] == '\f'
	}
	r, _ := utf8.DecodeRune(field)
	return unicode.IsSpace(r)
}

// jsonCells appends each cell as a JSON value: numbers as numbers,
// decimals as strings (no precision lost), dates as YYYY-MM-DD, timestamps
// as ISO 8601, bytes as base64, non-finite floats as "NaN", "Infinity" and
// "-Infinity", nested values as JSON; NULL is null.
func jsonCells(a arrow.Array) cells {
	var body cells
	switch a := a.(type) {
	case *array.Boolean:
		body = func(dst []byte, i int) []byte { return strconv.AppendBool(dst, a.Value(i)) }
	case *array.Int8:
		body = func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) }
	case *array.Int16:
		body = func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) }
	case *array.Int32:
		body = func(dst []byte, i int) []byte { return strconv.AppendInt(dst, int64(a.Value(i)), 10) }
	case *array.Int64:
		body = func(dst []byte, i int) []byte { return strconv.AppendInt(dst, a.Value(i), 10) }
	case *array.Uint8:
		body = func(dst []byte, i int) []byte { return strconv.AppendUint(dst, uint64(a.Value(i)), 10) }
	case *array.Uint16:
		body = func(dst []byte, i int) []byte { return strconv.AppendUint(dst, uint64(a.Value(i)), 10) }
	case *array.Uint32:
		body = func(dst []byte, i int) []byte { return strconv.AppendUint(dst, uint64(a.Value(i)), 10) }
	case *array.Uint64:
		body = func(dst []byte, i int) []byte { return strconv.AppendUint(dst, a.Value(i), 10) }
	case *array.Float32:
		body = func(dst []byte, i int) []byte { return appendJSONFloat(dst, float64(a.Value(i))) }
	case *array.Float64:
		body = func(dst []byte, i int) []byte { return appendJSONFloat(dst, a.Value(i)) }
	case array.ListLike, *array.Struct:
		body = func(dst []byte, i int) []byte { return append(dst, mustJSON(a.GetOneForMarshal(i))...) }
	case *array.String:
		body = func(dst []byte, i int) []byte { return appendJSONString(dst, a.Value(i)) }
	case *array.Decimal128, *array.Date32, *array.Timestamp, *array.Binary:
		// Text that needs no escaping, between quotes.
		text := textBody(a)
		body = func(dst []byte, i int) []byte { return append(text(append(dst, '"'), i), '"') }
	default:
		text := textBody(a)
		body = func(dst []byte, i int) []byte {
			start := len(dst)
			dst = text(dst, i)
			s := string(dst[start:])
			return appendJSONString(dst[:start], s)
		}
	}
	return func(dst []byte, i int) []byte {
		if a.IsNull(i) {
			return append(dst, "null"...)
		}
		return body(dst, i)
	}
}

// appendJSONFloat writes a float as encoding/json writes a float64 (the
// shortest form, exponent only outside 1e-6..1e21), and the values JSON has
// no number for (DuckDB's x / 0 gives one) as the strings "NaN",
// "Infinity" and "-Infinity", as Trino's clients and JavaScript name them.
func appendJSONFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' { // e-07 is written e-7
		b := dst[start:]
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			dst = dst[:len(dst)-1]
		}
	}
	return dst
}

// jsonSafe marks the ASCII bytes a JSON string holds as they are; the
// rest are escaped as encoding/json escapes them (with its HTML escaping of
// <, > and &, so the output is byte for byte what json.Marshal gave).
var jsonSafe = func() (safe [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		safe[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return safe
}()

// appendJSONString writes s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
