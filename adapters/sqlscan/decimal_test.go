package sqlscan

import (
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in          string
		prec, scale int32
		want        string // unscaled integer, or "" for an error
	}{
		{"0", 10, 2, "0"},
		{"123.45", 10, 2, "12345"},
		{"-123.4", 10, 2, "-12340"},
		{"+7", 3, 0, "7"},
		{"1.50", 5, 1, "15"},      // trailing zeros beyond scale are fine
		{"1.55", 5, 1, ""},        // never rounded
		{"1000", 3, 0, ""},        // too many digits
		{"999", 3, 0, "999"},      // largest that fits
		{"1.2e3", 6, 2, "120000"}, // exponent
		{"1234567890123456789012345678.0123456789", 38, 10, "12345678901234567890123456780123456789"},
		{"12345678901234567890123456789.0123456789", 38, 10, ""}, // 39 digits
		{"99999999999999999999999999999999999999", 38, 0, "99999999999999999999999999999999999999"},
		{"abc", 10, 2, ""},
		{"", 10, 2, ""},
		{"1.2.3", 10, 2, ""},
		{"NaN", 10, 2, ""},
	}
	for _, tt := range tests {
		n, err := ParseDecimal(tt.in, tt.prec, tt.scale)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseDecimal(%q, %d, %d) = %s, want an error", tt.in, tt.prec, tt.scale, n.BigInt())
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseDecimal(%q, %d, %d): %v", tt.in, tt.prec, tt.scale, err)
			continue
		}
		want, _ := new(big.Int).SetString(tt.want, 10)
		if n.BigInt().Cmp(want) != 0 {
			t.Errorf("ParseDecimal(%q, %d, %d) = %s, want %s", tt.in, tt.prec, tt.scale, n.BigInt(), want)
		}
	}
}

// TestSmallDecimalIsTheGeneralPath: wherever the int64 path answers, it
// gives what the big-number path gives, for edge forms and random values.
func TestSmallDecimalIsTheGeneralPath(t *testing.T) {
	general := func(s string, prec, scale int32) (string, bool) {
		coef, exp, err := splitDecimal(s)
		if err != nil {
			return "", false
		}
		n, err := fitDecimal(coef, exp, prec, scale, func() string { return s })
		if err != nil {
			return "", false
		}
		return n.BigInt().String(), true
	}
	check := func(s string, prec, scale int32) {
		t.Helper()
		n, ok := smallDecimal(s, prec, scale)
		if !ok {
			return
		}
		want, wok := general(s, prec, scale)
		if !wok || n.BigInt().String() != want {
			t.Errorf("%q as DECIMAL(%d,%d): fast %s, general %q (ok %v)", s, prec, scale, n.BigInt(), want, wok)
		}
	}
	for _, s := range []string{"0", "-0", "+0", "1.", ".5", "-.5", "007", "1.50", "1.55", " 12.3 ", "-", "+", ".", "",
		"999999999999999999", "-999999999999999999", "9999999999999999999", "123456789012345678.9", "0.000000000000000001"} {
		for _, ps := range [][2]int32{{10, 2}, {18, 0}, {18, 18}, {38, 10}, {3, 0}, {5, 1}, {19, 2}} {
			check(s, ps[0], ps[1])
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		v := r.Int64N(1_000_000_000_000) - 500_000_000_000
		frac := r.IntN(6)
		s := strconv.FormatInt(v, 10)
		if frac > 0 {
			neg := strings.HasPrefix(s, "-")
			d := strings.TrimPrefix(s, "-")
			for len(d) <= frac {
				d = "0" + d
			}
			s = d[:len(d)-frac] + "." + d[len(d)-frac:]
			if neg {
				s = "-" + s
			}
		}
		check(s, int32(10+r.IntN(29)), int32(r.IntN(8)))
		// and as a store's coefficient and exponent (PostgreSQL numeric)
		exp, prec, scale := int32(r.IntN(9)-6), int32(10+r.IntN(29)), int32(r.IntN(8))
		coef := big.NewInt(v)
		got, gerr := DecimalFromBig(coef, exp, prec, scale)
		want, werr := fitDecimal(coef, exp, prec, scale, func() string { return "" })
		if (gerr == nil) != (werr == nil) || (gerr == nil && got != want) {
			t.Errorf("DecimalFromBig(%d, %d, %d, %d) = %v %v, general %v %v", v, exp, prec, scale, got.BigInt(), gerr, want.BigInt(), werr)
		}
	}
}

func BenchmarkParseDecimal(b *testing.B) {
	for b.Loop() {
		if _, err := ParseDecimal("-12345.67", 14, 2); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseDecimalGeneral is the big-number path alone: what every
// value took before the int64 path.
func BenchmarkParseDecimalGeneral(b *testing.B) {
	for b.Loop() {
		coef, exp, err := splitDecimal("-12345.67")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fitDecimal(coef, exp, 14, 2, func() string { return "" }); err != nil {
			b.Fatal(err)
		}
	}
}
