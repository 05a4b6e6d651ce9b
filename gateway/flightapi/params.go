package flightapi

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Parameters are bound by substitution: each ? or $N in the statement is
// replaced by a SQL literal of the bound value, quoted by its Arrow type
// and wrapped in parentheses. The statement is scanned once, honouring
// '...' and E'...' strings, "..." identifiers, $tag$...$tag$ strings and
// -- and /* */ comments, so a ? or $1 inside any of them is left alone and
// a bound value can never end a string, open a comment or add a statement.
// Values are never concatenated into SQL any other way.

// paramText is a statement split at its parameters.
type paramText struct {
	parts []string // len(refs)+1 pieces of SQL around the parameters
	refs  []int    // the parameter (0-based) at each gap
	count int
}

func (p paramText) substitute(literals []string) string {
	var b strings.Builder
	for i, part := range p.parts {
		b.WriteString(part)
		if i < len(p.refs) {
			b.WriteString("(" + literals[p.refs[i]] + ")")
		}
	}
	return b.String()
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// scanParams finds the parameters of a statement.
func scanParams(q string) (paramText, error) {
	var out paramText
	positional, numbered := false, false
	last := 0
	gap := func(i, width, ref int) {
		out.parts = append(out.parts, q[last:i])
		out.refs = append(out.refs, ref)
		last = i + width
	}
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'':
			escapes := i > 0 && (q[i-1] == 'e' || q[i-1] == 'E') && (i == 1 || !isIdentByte(q[i-2]))
			j := i + 1
			for ; j < len(q); j++ {
				if escapes && q[j] == '\\' {
					j++
					continue
				}
				if q[j] == '\'' {
					if j+1 < len(q) && q[j+1] == '\'' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(q) {
				return out, errors.New("unterminated string literal")
			}
			i = j + 1
		case c == '"':
			j := i + 1
			for ; j < len(q); j++ {
				if q[j] == '"' {
					if j+1 < len(q) && q[j+1] == '"' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(q) {
				return out, errors.New("unterminated quoted identifier")
			}
			i = j + 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				i = len(q)
			} else {
				i += j + 1
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			depth, j := 1, i+2
			for ; j < len(q) && depth > 0; j++ {
				switch {
				case q[j] == '/' && j+1 < len(q) && q[j+1] == '*':
					depth++
					j++
				case q[j] == '*' && j+1 < len(q) && q[j+1] == '/':
					depth--
					j++
				}
			}
			if depth > 0 {
				return out, errors.New("unterminated comment")
			}
			i = j
		case c == '?':
			if numbered {
				return out, errors.New("use either ? or $1, $2, ... parameters, not both")
			}
			positional = true
			gap(i, 1, out.count)
			out.count++
			i++
		case c == '$':
			if i > 0 && isIdentByte(q[i-1]) {
				i++ // part of an identifier, e.g. a$b
				continue
			}
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			if j > i+1 {
				if positional {
					return out, errors.New("use either ? or $1, $2, ... parameters, not both")
				}
				numbered = true
				n, err := strconv.Atoi(q[i+1 : j])
				if err != nil || n < 1 || n > 1000 {
					return out, fmt.Errorf("parameter %s is out of range", q[i:j])
				}
				gap(i, j-i, n-1)
				out.count = max(out.count, n)
				i = j
				continue
			}
			// $tag$ ... $tag$
			k := i + 1
			for k < len(q) && isIdentByte(q[k]) && q[k] < 0x80 {
				k++
			}
			if k < len(q) && q[k] == '$' {
				tag := q[i : k+1]
				end := strings.Index(q[k+1:], tag)
				if end < 0 {
					return out, errors.New("unterminated dollar-quoted string")
				}
				i = k + 1 + end + len(tag)
				continue
			}
			if k > i+1 {
				return out, fmt.Errorf("named parameter %s is not supported; use $1, $2, ... or ?", q[i:k])
			}
			i++
		default:
			i++
		}
	}
	out.parts = append(out.parts, q[last:])
	return out, nil
}

// quote makes a SQL string literal; DuckDB strings have no backslash
// escapes, so doubling quotes is all it takes.
func quote(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("string is not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", errors.New("string contains a NUL byte")
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'", nil
}

// literal is the SQL for value i of arr.
func literal(arr arrow.Array, i int) (string, error) {
	if arr.IsNull(i) {
		return "NULL", nil
	}
	switch a := arr.(type) {
	case *array.Null:
		return "NULL", nil
	case *array.Boolean:
		if a.Value(i) {
			return "TRUE", nil
		}
		return "FALSE", nil
	case *array.Int8:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Int16:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10), nil
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10), nil
	case *array.Uint8:
		return strconv.FormatUint(uint64(a.Value(i)), 10), nil
	case *array.Uint16:
		return strconv.FormatUint(uint64(a.Value(i)), 10), nil
	case *array.Uint32:
		return strconv.FormatUint(uint64(a.Value(i)), 10), nil
	case *array.Uint64:
		return strconv.FormatUint(a.Value(i), 10), nil
	case *array.Float32:
		return "CAST('" + strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32) + "' AS FLOAT)", nil
	case *array.Float64:
		return "CAST('" + strconv.FormatFloat(a.Value(i), 'g', -1, 64) + "' AS DOUBLE)", nil
	case *array.Decimal128:
		t := a.DataType().(*arrow.Decimal128Type)
		return fmt.Sprintf("CAST('%s' AS DECIMAL(%d,%d))", decimalString(a.Value(i).BigInt(), t.Scale), t.Precision, t.Scale), nil
	case *array.String:
		return quote(a.Value(i))
	case *array.LargeString:
		return quote(a.Value(i))
	case *array.StringView:
		return quote(a.Value(i))
	case *array.Binary:
		return blob(a.Value(i)), nil
	case *array.LargeBinary:
		return blob(a.Value(i)), nil
	case *array.BinaryView:
		return blob(a.Value(i)), nil
	case *array.Date32:
		return "DATE '" + a.Value(i).FormattedString() + "'", nil
	case *array.Date64:
		return "DATE '" + a.Value(i).FormattedString() + "'", nil
	case *array.Timestamp:
		t := a.DataType().(*arrow.TimestampType)
		ts := a.Value(i).ToTime(t.Unit).UTC().Format("2006-01-02 15:04:05.999999999")
		if t.TimeZone != "" {
			return "TIMESTAMPTZ '" + ts + "+00'", nil
		}
		return "TIMESTAMP '" + ts + "'", nil
	}
	return "", fmt.Errorf("binding a %s is not supported; bind it as a string", arr.DataType())
}

func decimalString(v *big.Int, scale int32) string {
	s := new(big.Int).Abs(v).String()
	if scale > 0 {
		for len(s) <= int(scale) {
			s = "0" + s
		}
		s = s[:len(s)-int(scale)] + "." + s[len(s)-int(scale):]
	}
	if v.Sign() < 0 {
		s = "-" + s
	}
	return s
}

func blob(b []byte) string {
	var sb strings.Builder
	sb.WriteString("CAST('")
	for _, c := range b {
		fmt.Fprintf(&sb, "\\x%02X", c)
	}
	sb.WriteString("' AS BLOB)")
	return sb.String()
}
