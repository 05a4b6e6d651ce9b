package httpapi

import (
	"strconv"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// decimalText is n with scale digits after the point, as
// decimal128.Num.ToString writes it ("-0.05", "1234.50"), without its
// math/big (14% of a CSV download's CPU in issue 12's profile) for the
// values an int64 holds, which are nearly all of them.
func decimalText(n decimal128.Num, scale int32) string {
	hi, lo := n.HighBits(), n.LowBits()
	if scale < 0 || scale > 18 || !(hi == 0 && lo < 1<<63 || hi == -1 && lo >= 1<<63) {
		return n.ToString(scale)
	}
	v := int64(lo)
	if scale == 0 {
		return strconv.FormatInt(v, 10)
	}
	neg := v < 0
	var u uint64
	if neg {
		u = uint64(-v) // -MinInt64 wraps to itself: as uint64, its magnitude
	} else {
		u = uint64(v)
	}
	digits := strconv.FormatUint(u, 10)
	for len(digits) <= int(scale) {
		digits = "0" + digits
	}
	cut := len(digits) - int(scale)
	out := digits[:cut] + "." + digits[cut:]
	if neg {
		out = "-" + out
	}
	return out
}
