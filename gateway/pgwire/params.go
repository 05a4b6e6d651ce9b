package pgwire

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/councildata/gateway/gateway/sqltext"
)

// A Bind's parameters become SQL literals, substituted into the statement
// (sqltext.Template) exactly as Flight SQL's prepared statements are: the
// engine, the policy and the audit log see the final SQL. Each value is
// checked against its declared type first, so a number stays a number and
// everything else is a quoted string DuckDB casts where it is compared.

var numberText = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// paramLiteral is parameter n (1-based) as a SQL literal; b nil is NULL.
func paramLiteral(m *pgtype.Map, n int, oid uint32, format int16, b []byte) (string, error) {
	if b == nil {
		return "NULL", nil
	}
	bad := func(what string) error {
		return newError(stateInvalidText, "parameter $%d: %s", n, what)
	}
	if format == 1 {
		return binaryLiteral(m, n, oid, b, bad)
	}
	s := string(b)
	switch oid {
	case oidBool:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "t", "true", "1", "yes", "on", "y":
			return "TRUE", nil
		case "f", "false", "0", "no", "off", "n":
			return "FALSE", nil
		}
		return "", bad(fmt.Sprintf("invalid input for type boolean: %q", s))
	case oidInt2, oidInt4, oidInt8, oidOID:
		if _, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err != nil {
			return "", bad(fmt.Sprintf("invalid input for an integer: %q", s))
		}
		return strings.TrimSpace(s), nil
	case oidNumeric:
		t := strings.TrimSpace(s)
		if !numberText.MatchString(t) {
			return "", bad(fmt.Sprintf("invalid input for type numeric: %q", s))
		}
		return t, nil
	case oidFloat4, oidFloat8:
		t := strings.TrimSpace(s)
		if _, err := strconv.ParseFloat(t, 64); err != nil {
			return "", bad(fmt.Sprintf("invalid input for a float: %q", s))
		}
		return "CAST('" + t + "' AS DOUBLE)", nil
	case oidDate, oidTimestamp, oidTimestamptz, oidTime, oidInterval:
		q, err := sqltext.Quote(s)
		if err != nil {
			return "", bad(err.Error())
		}
		kw := map[uint32]string{oidDate: "DATE", oidTimestamp: "TIMESTAMP", oidTimestamptz: "TIMESTAMPTZ", oidTime: "TIME", oidInterval: "INTERVAL"}[oid]
		return "CAST(" + q + " AS " + kw + ")", nil
	case oidBytea:
		if h, ok := strings.CutPrefix(s, `\x`); ok {
			raw, err := hex.DecodeString(h)
			if err != nil {
				return "", bad("invalid hex bytea")
			}
			return sqltext.Blob(raw), nil
		}
		return sqltext.Blob(b), nil
	}
	q, err := sqltext.Quote(s)
	if err != nil {
		return "", bad(err.Error())
	}
	return q, nil
}

func binaryLiteral(m *pgtype.Map, n int, oid uint32, b []byte, bad func(string) error) (string, error) {
	size := func(want int) error {
		if len(b) != want {
			return bad(fmt.Sprintf("a binary value of type %d must be %d bytes, not %d", oid, want, len(b)))
		}
		return nil
	}
	switch oid {
	case oidBool:
		if err := size(1); err != nil {
			return "", err
		}
		if b[0] != 0 {
			return "TRUE", nil
		}
		return "FALSE", nil
	case oidInt2:
		if err := size(2); err != nil {
			return "", err
		}
		return strconv.Itoa(int(int16(binary.BigEndian.Uint16(b)))), nil
	case oidInt4, oidOID:
		if err := size(4); err != nil {
			return "", err
		}
		if oid == oidOID {
			return strconv.FormatUint(uint64(binary.BigEndian.Uint32(b)), 10), nil
		}
		return strconv.Itoa(int(int32(binary.BigEndian.Uint32(b)))), nil
	case oidInt8:
		if err := size(8); err != nil {
			return "", err
		}
		return strconv.FormatInt(int64(binary.BigEndian.Uint64(b)), 10), nil
	case oidFloat4:
		if err := size(4); err != nil {
			return "", err
		}
		return "CAST('" + strconv.FormatFloat(float64(math.Float32frombits(binary.BigEndian.Uint32(b))), 'g', -1, 32) + "' AS FLOAT)", nil
	case oidFloat8:
		if err := size(8); err != nil {
			return "", err
		}
		return "CAST('" + strconv.FormatFloat(math.Float64frombits(binary.BigEndian.Uint64(b)), 'g', -1, 64) + "' AS DOUBLE)", nil
	case oidNumeric:
		var num pgtype.Numeric
		if err := m.Scan(oidNumeric, pgtype.BinaryFormatCode, b, &num); err != nil {
			return "", bad("invalid binary numeric")
		}
		if num.NaN || num.InfinityModifier != pgtype.Finite {
			return "", bad("NaN and infinite numerics cannot be compared with the councils' data")
		}
		v, err := num.Value()
		if err != nil {
			return "", bad("invalid binary numeric")
		}
		return fmt.Sprint(v), nil
	case oidDate:
		if err := size(4); err != nil {
			return "", err
		}
		d := pgEpoch.AddDate(0, 0, int(int32(binary.BigEndian.Uint32(b))))
		return "DATE '" + d.Format(time.DateOnly) + "'", nil
	case oidTimestamp, oidTimestamptz:
		if err := size(8); err != nil {
			return "", err
		}
		t := pgEpoch.Add(time.Duration(int64(binary.BigEndian.Uint64(b))) * time.Microsecond)
		if oid == oidTimestamptz {
			return "TIMESTAMPTZ '" + t.Format("2006-01-02 15:04:05.999999") + "+00'", nil
		}
		return "TIMESTAMP '" + t.Format("2006-01-02 15:04:05.999999") + "'", nil
	case oidBytea:
		return sqltext.Blob(b), nil
	case 0, oidText, oidVarchar, oidBpchar, oidName, oidUnknown, oidJSON:
		q, err := sqltext.Quote(string(b))
		if err != nil {
			return "", bad(err.Error())
		}
		return q, nil
	case oidUUID:
		if err := size(16); err != nil {
			return "", err
		}
		h := hex.EncodeToString(b)
		return "'" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:] + "'", nil
	}
	return "", bad(fmt.Sprintf("the binary format of type %d is not supported; send the value as text", oid))
}
