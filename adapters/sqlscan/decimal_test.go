package sqlscan

import (
	"math/big"
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
