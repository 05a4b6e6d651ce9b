package httpapi

import (
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// TestDecimalTextIsToString: the int64 path writes what arrow-go's
// ToString writes, for edge values and random ones at every scale.
func TestDecimalTextIsToString(t *testing.T) {
	vals := []decimal128.Num{decimal128.FromI64(0), decimal128.FromI64(-5), decimal128.FromI64(5), decimal128.FromI64(-1 << 63),
		decimal128.FromI64(1<<63 - 1), decimal128.FromI64(-1), decimal128.New(1, 0), decimal128.New(-1, 1<<63)}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		vals = append(vals, decimal128.FromI64(r.Int64()>>r.IntN(63)*(1-2*int64(r.IntN(2)))))
	}
	for _, n := range vals {
		for scale := int32(0); scale <= 20; scale++ {
			if got, want := decimalText(n, scale), n.ToString(scale); got != want {
				t.Fatalf("%s at scale %d: %q, ToString %q", n.BigInt(), scale, got, want)
			}
		}
	}
}

func BenchmarkDecimalText(b *testing.B) {
	n := decimal128.FromI64(-1234567)
	for b.Loop() {
		_ = decimalText(n, 2)
	}
}

func BenchmarkDecimalToString(b *testing.B) {
	n := decimal128.FromI64(-1234567)
	for b.Loop() {
		_ = n.ToString(2)
	}
}
