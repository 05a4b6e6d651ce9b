package httpapi

import (
	"strconv"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// appendDecimal appends n with scale digits after the point, as
// decimal128.Num.ToString writes it ("-0.05", "1234.50"), without its
// math/big (14% of a CSV download's CPU in issue 12's profile) for the
// values an int64 holds, which are nearly all of them.
func appendDecimal(dst []byte, n decimal128.Num, scale int32) []byte {
	hi, lo := n.HighBits(), n.LowBits()
	if scale < 0 || scale > 18 || !(hi == 0 && lo < 1<<63 || hi == -1 && lo >= 1<<63) {
		return append(dst, n.ToString(scale)...)
	}
	v := int64(lo)
	if scale == 0 {
		return strconv.AppendInt(dst, v, 10)
	}
	var u uint64
	if v < 0 {
		dst = append(dst, '-')
		u = uint64(-v) // -MinInt64 wraps to itself: as uint64, its magnitude
	} else {
		u = uint64(v)
	}
	var digits [24]byte
	d := strconv.AppendUint(digits[:0], u, 10)
	if len(d) <= int(scale) { // |n| < 1: "0.", then zeros up to the digits
		dst = append(dst, '0', '.')
		for pad := int(scale) - len(d); pad > 0; pad-- {
			dst = append(dst, '0')
		}
		return append(dst, d...)
	}
	cut := len(d) - int(scale)
	dst = append(dst, d[:cut]...)
	dst = append(dst, '.')
	return append(dst, d[cut:]...)
}

// decimalText is appendDecimal as a string.
func decimalText(n decimal128.Num, scale int32) string {
	return string(appendDecimal(make([]byte, 0, 24), n, scale))
}
