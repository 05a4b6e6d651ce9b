package sqlscan

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// ParseDecimal parses a decimal literal such as "-1234.50" (an optional
// exponent is accepted) into a Decimal128 of the given precision and scale,
// exactly: a value that needs more digits after the point than scale, or
// more before it than prec-scale, is an error, never rounded. (Unlike
// decimal128.FromString, which goes through a binary float.)
func ParseDecimal(s string, prec, scale int32) (decimal128.Num, error) {
	if n, ok := smallDecimal(s, prec, scale); ok {
		return n, nil
	}
	coef, exp, err := splitDecimal(s)
	if err != nil {
		return decimal128.Num{}, err
	}
	return fitDecimal(coef, exp, prec, scale, func() string { return strings.TrimSpace(s) })
}

// pow10i are the powers of ten an int64 holds.
var pow10i = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// smallDecimal is ParseDecimal's path for what most values are: a plain
// [sign]digits[.digits] of at most 18 digits, parsed in int64 arithmetic
// with no allocation. It reports false for anything else, and for a value
// that does not fit, so the general path gives the same answer or error.
func smallDecimal(s string, prec, scale int32) (decimal128.Num, bool) {
	s = strings.TrimSpace(s)
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg, s = s[0] == '-', s[1:]
	}
	var v int64
	digits, frac, point := 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if digits == 18 {
				return decimal128.Num{}, false
			}
			v = v*10 + int64(c-'0')
			digits++
			if point {
				frac++
			}
		case c == '.' && !point:
			point = true
		default:
			return decimal128.Num{}, false
		}
	}
	if digits == 0 {
		return decimal128.Num{}, false
	}
	if neg {
		v = -v
	}
	return fitInt64(v, int32(-frac), prec, scale)
}

// fitInt64 is fitDecimal for coef v × 10^exp in int64 arithmetic; false
// when that is not enough, or the value does not fit (the general path
// then gives the error).
func fitInt64(v int64, exp, prec, scale int32) (decimal128.Num, bool) {
	if scale < 0 || scale > 18 || v == -1<<63 {
		return decimal128.Num{}, false
	}
	abs := v
	if abs < 0 {
		abs = -abs
	}
	switch shift := int64(exp) + int64(scale); {
	case shift > 18:
		return decimal128.Num{}, false
	case shift > 0:
		if abs > (1<<63-1)/pow10i[shift] {
			return decimal128.Num{}, false
		}
		v *= pow10i[shift]
		abs *= pow10i[shift]
	case shift < -18:
		return decimal128.Num{}, false
	case shift < 0:
		d := pow10i[-shift]
		if v%d != 0 {
			return decimal128.Num{}, false // digits beyond the scale: the general path says so
		}
		v /= d
		abs /= d
	}
	if prec < 19 && abs >= pow10i[prec] {
		return decimal128.Num{}, false
	}
	return decimal128.FromI64(v), true
}

// DecimalFromBig converts coef × 10^exp to a Decimal128(prec, scale),
// exactly, or returns an error saying why it does not fit.
func DecimalFromBig(coef *big.Int, exp, prec, scale int32) (decimal128.Num, error) {
	if coef.IsInt64() {
		if n, ok := fitInt64(coef.Int64(), exp, prec, scale); ok {
			return n, nil
		}
	}
	return fitDecimal(coef, exp, prec, scale, func() string { return decimalText(coef, exp) })
}

// fitDecimal scales coef × 10^exp to a Decimal128(prec, scale); text, for
// an error only, shows the value.
func fitDecimal(coef *big.Int, exp, prec, scale int32, text func() string) (decimal128.Num, error) {
	v := new(big.Int).Set(coef)
	if shift := int64(exp) + int64(scale); shift > 0 {
		if shift > 80 {
			return decimal128.Num{}, fmt.Errorf("value %s does not fit DECIMAL(%d,%d)", text(), prec, scale)
		}
		v.Mul(v, pow10(shift))
	} else if shift < 0 {
		if -shift > 200 {
			if v.Sign() == 0 {
				return decimal128.Num{}, nil
			}
			return decimal128.Num{}, fmt.Errorf("value %s has more than %d digits after the point for DECIMAL(%d,%d)", text(), scale, prec, scale)
		}
		q, r := new(big.Int).QuoRem(v, pow10(-shift), new(big.Int))
		if r.Sign() != 0 {
			return decimal128.Num{}, fmt.Errorf("value %s has more than %d digits after the point for DECIMAL(%d,%d)", text(), scale, prec, scale)
		}
		v = q
	}
	if new(big.Int).Abs(v).Cmp(pow10(int64(prec))) >= 0 {
		return decimal128.Num{}, fmt.Errorf("value %s does not fit DECIMAL(%d,%d)", text(), prec, scale)
	}
	return decimal128.FromBigInt(v), nil
}

// splitDecimal parses s into coef × 10^exp.
func splitDecimal(s string) (*big.Int, int32, error) {
	t := strings.TrimSpace(s)
	mant, expPart := t, ""
	if i := strings.IndexAny(t, "eE"); i >= 0 {
		mant, expPart = t[:i], t[i+1:]
	}
	neg := false
	if mant != "" && (mant[0] == '-' || mant[0] == '+') {
		neg = mant[0] == '-'
		mant = mant[1:]
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	if digits == "" || strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return nil, 0, fmt.Errorf("%q is not a decimal number", s)
	}
	exp := -int64(len(frac))
	if expPart != "" {
		e, err := strconv.ParseInt(expPart, 10, 32)
		if err != nil {
			return nil, 0, fmt.Errorf("%q is not a decimal number", s)
		}
		exp += e
	}
	if exp < -1<<30 || exp > 1<<30 {
		return nil, 0, fmt.Errorf("%q is out of range", s)
	}
	coef, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return nil, 0, fmt.Errorf("%q is not a decimal number", s)
	}
	if neg {
		coef.Neg(coef)
	}
	return coef, int32(exp), nil
}

var pow10s [81]*big.Int

func init() {
	pow10s[0] = big.NewInt(1)
	for i := 1; i < len(pow10s); i++ {
		pow10s[i] = new(big.Int).Mul(pow10s[i-1], big.NewInt(10))
	}
}

func pow10(n int64) *big.Int {
	if n < int64(len(pow10s)) {
		return pow10s[n]
	}
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(n), nil)
}

// decimalText shows coef × 10^exp as a plain decimal, e.g. 0.12345.
func decimalText(coef *big.Int, exp int32) string {
	digits := new(big.Int).Abs(coef).String()
	sign := ""
	if coef.Sign() < 0 {
		sign = "-"
	}
	switch {
	case exp >= 0 && exp <= 40:
		return sign + digits + strings.Repeat("0", int(exp))
	case exp < 0 && -exp <= 80:
		n := int(-exp)
		if len(digits) <= n {
			digits = strings.Repeat("0", n-len(digits)+1) + digits
		}
		return sign + digits[:len(digits)-n] + "." + digits[len(digits)-n:]
	}
	return fmt.Sprintf("%s%se%d", sign, digits, exp)
}
