package synth

import (
	"bytes"
	"context"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readTree returns the CSV and JSON files under dir by relative path.
func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(p); ext == ".csv" || ext == ".json" {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			out[rel] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSameSeedSameBytes(t *testing.T) {
	ctx := context.Background()
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for dir, seed := range map[string]uint64{a: 42, b: 42, c: 43} {
		if err := WriteDemo(ctx, dir, Options{Seed: seed}); err != nil {
			t.Fatal(err)
		}
		if err := WriteCanonical(ctx, filepath.Join(dir, "canonical"), Options{Seed: seed}, DemoCouncils()); err != nil {
			t.Fatal(err)
		}
	}
	fa, fb, fc := readTree(t, a), readTree(t, b), readTree(t, c)
	if len(fa) < 20 {
		t.Fatalf("only %d CSV/JSON files written", len(fa))
	}
	for name, x := range fa {
		if !bytes.Equal(x, fb[name]) {
			t.Errorf("%s differs between two runs with seed 42", name)
		}
		if y, ok := fc[name]; ok && bytes.Equal(x, y) {
			t.Errorf("%s is the same with seeds 42 and 43", name)
		}
	}
	if len(fb) != len(fa) {
		t.Errorf("run 1 wrote %d files, run 2 %d", len(fa), len(fb))
	}
}

func TestAddingACouncilPerturbsNoOther(t *testing.T) {
	all := LoadCouncils(8, StoreCSV)
	fife := all[3]
	one := Generate(Options{Seed: 7}, fife)
	for _, c := range all {
		Generate(Options{Seed: 7}, c)
	}
	again := Generate(Options{Seed: 7}, fife)
	if !slices.Equal(one.Spend, again.Spend) || !slices.Equal(one.Planning, again.Planning) {
		t.Fatal("generating other councils changed Fife's records")
	}
}

var twoDP = regexp.MustCompile(`^-?[0-9]+\.[0-9]{2}$`)

func TestCanonicalInvariants(t *testing.T) {
	o := Options{Seed: 42, SpendRows: 3000, PlanningRows: 1000}.withDefaults()
	var n, neg, indiv, capital, under500, shared int
	var amounts []float64
	var decided, granted int
	suppliers := map[string]map[string]bool{} // name -> councils
	for _, c := range DemoCouncils() {
		g := Generate(o, c)
		if len(g.Spend) != o.SpendRows || len(g.Planning) != o.PlanningRows {
			t.Fatalf("%s: %d spend, %d planning rows", c.ID, len(g.Spend), len(g.Planning))
		}
		ids := map[string]bool{}
		for _, s := range g.Spend {
			n++
			if !o.FY.Contains(s.PaymentDate) {
				t.Errorf("%s %s: payment date %s outside %s", c.ID, s.TransactionID, s.PaymentDate.Format("2006-01-02"), o.FY.Label())
			}
			if ids[s.TransactionID] {
				t.Errorf("%s: transaction id %s twice", c.ID, s.TransactionID)
			}
			ids[s.TransactionID] = true
			if !twoDP.MatchString(s.Amount.String()) || !twoDP.MatchString(s.IrrecoverableVAT.String()) {
				t.Errorf("%s: amount %s not 2dp", c.ID, s.Amount)
			}
			if !slices.Contains([]string{"company", "charity", "individual", "public_body"}, s.BeneficiaryType) {
				t.Errorf("%s: beneficiary type %q", c.ID, s.BeneficiaryType)
			}
			if s.CapitalRevenue != "C" && s.CapitalRevenue != "R" {
				t.Errorf("%s: capital_revenue %q", c.ID, s.CapitalRevenue)
			}
			if s.VCSEGrant && s.BeneficiaryType != "charity" {
				t.Errorf("%s: VCSE grant to a %s", c.ID, s.BeneficiaryType)
			}
			if s.IrrecoverableVAT < 0 {
				t.Errorf("%s: negative VAT", c.ID)
			}
			switch {
			case s.Amount < 0:
				neg++
			case s.Amount < 50000:
				under500++
			}
			if s.BeneficiaryType == "individual" {
				indiv++
			}
			if s.CapitalRevenue == "C" {
				capital++
			}
			amounts = append(amounts, math.Abs(float64(s.Amount))/100)
			if s.BeneficiaryType != "individual" {
				if suppliers[s.BeneficiaryName] == nil {
					suppliers[s.BeneficiaryName] = map[string]bool{}
				}
				suppliers[s.BeneficiaryName][c.ID] = true
			}
		}
		for _, p := range g.Planning {
			if !o.FY.Contains(p.ReceivedDate) {
				t.Errorf("%s %s: received %s outside the year", c.ID, p.Reference, p.ReceivedDate)
			}
			inDecision := p.Status == "decided" || p.Status == "withdrawn" || p.Status == "appealed"
			if inDecision != p.Decided() || p.Decided() == p.DecisionDate.IsZero() {
				t.Errorf("%s %s: status %s, decision %q, date %v", c.ID, p.Reference, p.Status, p.Decision, p.DecisionDate)
			}
			if p.Status == "withdrawn" && p.Decision != "withdrawn" || p.Status != "withdrawn" && p.Decision == "withdrawn" {
				t.Errorf("%s %s: status %s with decision %s", c.ID, p.Reference, p.Status, p.Decision)
			}
			if p.Decided() && (p.DecisionDate.Before(p.ReceivedDate) || p.DecisionDate.After(AsOf(o.FY))) {
				t.Errorf("%s %s: decided %s, received %s", c.ID, p.Reference, p.DecisionDate, p.ReceivedDate)
			}
			if p.Status == "decided" || p.Status == "appealed" {
				decided++
				if p.Decision == "grant" {
					granted++
				}
				if lag := p.DecisionDate.Sub(p.ReceivedDate).Hours() / 24; lag < 33 || lag > 93 {
					t.Errorf("%s %s: decision after %.0f days, want 5-13 weeks", c.ID, p.Reference, lag)
				}
			}
			if !regexp.MustCompile(`^[A-Z]{1,2}[0-9]{1,2} [0-9][A-Z]{2}$`).MatchString(p.Postcode) || !slices.Contains(c.Districts, strings.Fields(p.Postcode)[0]) {
				t.Errorf("%s: postcode %q not in the council's area", c.ID, p.Postcode)
			}
		}
	}
	slices.Sort(amounts)
	median := amounts[len(amounts)/2]
	for _, chk := range []struct {
		what   string
		got    float64
		lo, hi float64
	}{
		{"median amount £", median, 900, 1600},
		{"share of credit notes", float64(neg) / float64(n), 0.008, 0.025},
		{"share of individuals", float64(indiv) / float64(n), 0.06, 0.10},
		{"share of capital", float64(capital) / float64(n), 0.03, 0.08},
		{"share under £500", float64(under500) / float64(n), 0.04, 0.11},
		{"share of decisions granted", float64(granted) / float64(decided), 0.84, 0.92},
	} {
		if chk.got < chk.lo || chk.got > chk.hi {
			t.Errorf("%s = %.3f, want %.3f..%.3f", chk.what, chk.got, chk.lo, chk.hi)
		}
	}
	// Of each council's suppliers, about a quarter are paid by another
	// council too.
	own := 0
	for _, cs := range suppliers {
		own += len(cs)
		if len(cs) > 1 {
			shared += len(cs)
		}
	}
	if f := float64(shared) / float64(own); f < 0.18 || f > 0.35 {
		t.Errorf("%.2f of a council's suppliers are paid by another council too, want about 0.25", f)
	}
}

func TestMoney(t *testing.T) {
	for m, want := range map[Money][2]string{
		0: {"0.00", "£0.00"}, 5: {"0.05", "£0.05"}, 123456: {"1234.56", "£1,234.56"},
		-123456789: {"-1234567.89", "-£1,234,567.89"}, 100000: {"1000.00", "£1,000.00"},
	} {
		if m.String() != want[0] || m.Pounds() != want[1] {
			t.Errorf("%d: %s %s, want %v", m, m.String(), m.Pounds(), want)
		}
	}
}
