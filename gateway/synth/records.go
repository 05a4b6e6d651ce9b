package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Money is an amount in pence, so every rendering has exactly two decimals
// and no float rounding creeps in.
type Money int64

// String renders the amount as plain decimal: 1234.56, -12.30.
func (m Money) String() string {
	sign := ""
	v := int64(m)
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

// Pounds renders the amount as "£1,234.56" (credit notes as "-£1,234.56").
func (m Money) Pounds() string {
	sign := ""
	v := int64(m)
	if v < 0 {
		sign, v = "-", -v
	}
	units := strconv.FormatInt(v/100, 10)
	var b strings.Builder
	for i, c := range units {
		if i > 0 && (len(units)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return fmt.Sprintf("%s£%s.%02d", sign, b.String(), v%100)
}

// FinancialYear is the year from 1 April Start to 31 March Start+1.
type FinancialYear int

// First and Last are the first and last days of the year.
func (fy FinancialYear) First() time.Time { return date(int(fy), 4, 1) }
func (fy FinancialYear) Last() time.Time  { return date(int(fy)+1, 3, 31) }

// Label is "2024-25".
func (fy FinancialYear) Label() string { return fmt.Sprintf("%d-%02d", int(fy), (int(fy)+1)%100) }

// Contains reports whether d falls within the year.
func (fy FinancialYear) Contains(d time.Time) bool {
	return !d.Before(fy.First()) && !d.After(fy.Last())
}

func date(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

// weekday moves a weekend day to the nearest weekday inside [lo, hi].
func weekday(d, lo, hi time.Time) time.Time {
	switch d.Weekday() {
	case time.Saturday:
		if d.AddDate(0, 0, -1).Before(lo) {
			return d.AddDate(0, 0, 2)
		}
		return d.AddDate(0, 0, -1)
	case time.Sunday:
		if d.AddDate(0, 0, 1).After(hi) {
			return d.AddDate(0, 0, -2)
		}
		return d.AddDate(0, 0, 1)
	}
	return d
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func personName(r *rand.Rand) string { return pick(r, firstNames) + " " + pick(r, surnames) }

// Spend is one payment: the canonical columns of spend_over_500 plus the
// local detail some councils print beside them (division, category, code,
// supplier reference), which the standard dataset does not carry.
type Spend struct {
	TransactionID      string
	PaymentDate        time.Time
	OrganisationalUnit string
	ExpenseType        string
	Purpose            string
	BeneficiaryName    string
	BeneficiaryType    string // company, charity, individual, public_body
	Amount             Money  // net
	IrrecoverableVAT   Money
	// VAT is the recoverable VAT on the payment (gross is Amount + VAT):
	// standard rate on what companies supply, none otherwise.
	VAT            Money
	CapitalRevenue string // C or R
	VCSEGrant      bool

	Division        string // local detail: service division
	ExpenseCategory string // local detail: expenditure category
	ExpenseCode     int    // local detail: detailed expenditure code
	SupplierRef     string // local detail: supplier number
}

type supplier struct {
	Name, Type, Ref string
}

// nationalSuppliers is the pool shared by every council, so that joins
// across councils find the same suppliers.
func nationalSuppliers(seed uint64) []supplier {
	r := rng(seed, "GB", "suppliers")
	seen := map[string]bool{}
	var out []supplier
	for len(out) < 80 {
		name := pick(r, supplierStems) + " " + pick(r, supplierTrades) + " " + pick(r, companySuffixes)
		if seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, supplier{Name: name, Type: "company", Ref: fmt.Sprintf("N%05d", 10000+len(out))})
	}
	return out
}

// localSuppliers is the council's own pool: firms, charities and public
// bodies.
func localSuppliers(seed uint64, c *Council) []supplier {
	r := rng(seed, c.GSS, "suppliers")
	seen := map[string]bool{}
	var out []supplier
	add := func(name, typ string) {
		if seen[name] {
			return
		}
		seen[name] = true
		out = append(out, supplier{Name: name, Type: typ, Ref: fmt.Sprintf("%d", 200000+r.IntN(800000))})
	}
	for len(out) < 190 {
		switch x := r.IntN(100); {
		case x < 82:
			stem := pick(r, supplierStems)
			if r.IntN(3) == 0 {
				stem = c.Town
			}
			add(stem+" "+pick(r, supplierTrades)+" "+pick(r, companySuffixes), "company")
		case x < 95:
			place := c.Town
			if r.IntN(2) == 0 {
				place = strings.SplitN(pick(r, c.Wards), "/", 2)[0]
			}
			add(fmt.Sprintf(pick(r, charityForms), place), "charity")
		default:
			if b := pick(r, publicBodies); b != c.Name {
				add(b, "public_body")
			}
		}
	}
	return out
}

// GenerateSpend makes n payments of council c in financial year fy, sorted
// by payment date and numbered in that order.
func GenerateSpend(seed uint64, c Council, fy FinancialYear, n int) []Spend {
	r := rng(seed, c.GSS, SpendOver500)
	national := nationalSuppliers(seed)
	local := localSuppliers(seed, &c)
	totalW := 0
	for _, e := range expenseTypes {
		totalW += e.Weight
	}
	days := int(fy.Last().Sub(fy.First()).Hours()/24) + 1
	out := make([]Spend, 0, n)
	for range n {
		var s Spend
		s.PaymentDate = weekday(fy.First().AddDate(0, 0, r.IntN(days)), fy.First(), fy.Last())
		// beneficiary
		var sup supplier
		switch x := r.Float64(); {
		case x < 0.08:
			sup = supplier{Name: personName(r), Type: "individual", Ref: fmt.Sprintf("%d", 900000+r.IntN(99999))}
		case x < 0.08+0.23:
			sup = national[int(float64(len(national))*math.Pow(r.Float64(), 1.6))]
		default:
			sup = local[int(float64(len(local))*math.Pow(r.Float64(), 1.6))]
		}
		s.BeneficiaryName, s.BeneficiaryType, s.SupplierRef = sup.Name, sup.Type, sup.Ref
		// expense type: individuals are paid allowances and fees; charities
		// mostly get grants.
		ei := 0
		switch {
		case sup.Type == "individual":
			want := pick(r, []string{"Direct Payments", "Foster Care Allowances", "Professional Fees"})
			ei = slices.IndexFunc(expenseTypes, func(e expenseType) bool { return e.Type == want })
		case sup.Type == "charity" && r.IntN(10) < 7:
			ei = 1
		case sup.Type == "public_body" && r.IntN(2) == 0:
			ei = 2
		default:
			w := r.IntN(totalW)
			for i, e := range expenseTypes {
				if w < e.Weight {
					ei = i
					break
				}
				w -= e.Weight
			}
		}
		e := expenseTypes[ei]
		s.ExpenseCategory, s.ExpenseType, s.ExpenseCode = e.Category, e.Type, e.Code
		s.Purpose = pick(r, e.Purposes)
		s.CapitalRevenue = "R"
		if e.Category == "Capital" {
			s.CapitalRevenue = "C"
		}
		s.VCSEGrant = sup.Type == "charity" && strings.Contains(strings.ToLower(s.Purpose), "grant")
		ou := orgUnits[r.IntN(len(orgUnits))]
		switch e.Category {
		case "Transfer Payments":
			ou = orgUnits[1]
		case "Capital":
			ou = orgUnits[2+r.IntN(2)]
		}
		s.OrganisationalUnit, s.Division = ou.Unit, pick(r, ou.Divisions)
		// amount: log-normal around £1,200 with a Pareto tail; most of the
		// draws under £500 are lifted over the threshold (about 7% stay
		// under, as in real files where the threshold is applied to gross).
		x := math.Exp(math.Log(1200) + 1.4*r.NormFloat64())
		if x < 500 && r.Float64() < 0.74 {
			x = 500 + 700*r.Float64()
		}
		if r.Float64() < 0.01 {
			x *= math.Pow(1-r.Float64(), -1/1.2) // Pareto, alpha 1.2
		}
		x = math.Min(math.Max(x, 1), 4_900_000)
		s.Amount = Money(math.Round(x * 100))
		if s.BeneficiaryType == "company" && r.Float64() < 0.05 {
			s.IrrecoverableVAT = Money(math.Round(float64(s.Amount) * 0.2 * (0.1 + 0.9*r.Float64())))
		}
		if r.Float64() < 0.015 { // credit note
			s.Amount, s.IrrecoverableVAT = -s.Amount, 0
		}
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b Spend) int { return a.PaymentDate.Compare(b.PaymentDate) })
	for i := range out {
		if out[i].BeneficiaryType == "company" {
			out[i].VAT = out[i].Amount / 5
		}
	}
	style := txnStyle(c.GSS)
	perMonth := map[string]int{}
	for i := range out {
		d := out[i].PaymentDate
		switch style {
		case 0: // Leeds: yymm-nnnnn
			k := d.Format("0601")
			perMonth[k]++
			out[i].TransactionID = fmt.Sprintf("%s-%05d", k, perMonth[k])
		case 1: // SAP document number
			out[i].TransactionID = fmt.Sprintf("51%08d", 100000+i*7)
		default: // ledger reference
			out[i].TransactionID = fmt.Sprintf("AP%s%06d", d.Format("06"), 1+i)
		}
	}
	return out
}

func txnStyle(gss string) int {
	n := 0
	for _, c := range gss {
		n += int(c)
	}
	return n % 3
}

// Planning is one planning application: the canonical columns of
// planning_applications.
type Planning struct {
	Reference        string
	ReceivedDate     time.Time
	DecisionDate     time.Time // zero when undecided
	ApplicationType  string
	Description      string
	AddressText      string
	Postcode         string
	Ward             string
	Status           string // registered, pending, decided, withdrawn, appealed
	Decision         string // grant, refuse, split, withdrawn; "" when undecided
	ApplicantName    string
	ResponsesFor     int
	ResponsesAgainst int
}

// Decided reports whether the application has a decision.
func (p *Planning) Decided() bool { return p.Decision != "" }

// AsOf is the day the planning register is extracted: four weeks after the
// end of the financial year, so late applications are still undecided.
func AsOf(fy FinancialYear) time.Time { return fy.Last().AddDate(0, 0, 28) }

// GeneratePlanning makes n planning applications received by council c in
// financial year fy, as the register stood on AsOf(fy), sorted by received
// date and numbered in that order.
func GeneratePlanning(seed uint64, c Council, fy FinancialYear, n int) []Planning {
	r := rng(seed, c.GSS, PlanningApplications)
	totalW := 0
	for _, t := range appTypes {
		totalW += t.Weight
	}
	asOf := AsOf(fy)
	days := int(fy.Last().Sub(fy.First()).Hours()/24) + 1
	out := make([]Planning, 0, n)
	suffix := map[string]string{}
	for range n {
		var p Planning
		p.ReceivedDate = weekday(fy.First().AddDate(0, 0, r.IntN(days)), fy.First(), fy.Last())
		w := r.IntN(totalW)
		for _, t := range appTypes {
			if w < t.Weight {
				p.ApplicationType = t.Code
				suffix[t.Code] = t.Suffix
				break
			}
			w -= t.Weight
		}
		p.Description = pick(r, descriptions[p.ApplicationType])
		p.AddressText = fmt.Sprintf("%d %s %s, %s", 1+r.IntN(180), pick(r, streetStems), pick(r, streetKinds), c.Town)
		p.Postcode = fmt.Sprintf("%s %d%c%c", pick(r, c.Districts), r.IntN(10), inwardLetters[r.IntN(len(inwardLetters))], inwardLetters[r.IntN(len(inwardLetters))])
		p.Ward = pick(r, c.Wards)
		p.ApplicantName = personName(r)
		big := p.ApplicationType == "full" || p.ApplicationType == "outline"
		if r.IntN(4) == 0 || big {
			p.ResponsesFor = r.IntN(3)
			p.ResponsesAgainst = r.IntN(4)
			if big && r.IntN(3) == 0 {
				p.ResponsesAgainst += r.IntN(40)
			}
		}
		if r.Float64() < 0.04 {
			wd := weekday(p.ReceivedDate.AddDate(0, 0, 14+r.IntN(60)), p.ReceivedDate, asOf)
			if !wd.After(asOf) {
				p.Status, p.Decision, p.DecisionDate = "withdrawn", "withdrawn", wd
			}
		}
		if p.Status == "" {
			dd := weekday(p.ReceivedDate.AddDate(0, 0, 35+r.IntN(57)), p.ReceivedDate, p.ReceivedDate.AddDate(1, 0, 0))
			switch x := r.Float64(); {
			case dd.After(asOf):
				p.Status = "pending"
				if p.ReceivedDate.After(asOf.AddDate(0, 0, -49)) {
					p.Status = "registered"
				}
			case x < 0.88:
				p.Status, p.Decision, p.DecisionDate = "decided", "grant", dd
			case x < 0.97:
				p.Status, p.Decision, p.DecisionDate = "decided", "refuse", dd
				if r.IntN(4) == 0 {
					p.Status = "appealed"
				}
			default:
				p.Status, p.Decision, p.DecisionDate = "decided", "split", dd
			}
		}
		out = append(out, p)
	}
	slices.SortStableFunc(out, func(a, b Planning) int { return a.ReceivedDate.Compare(b.ReceivedDate) })
	perYear := map[int]int{}
	for i := range out {
		y := out[i].ReceivedDate.Year()
		perYear[y]++
		out[i].Reference = fmt.Sprintf("%02d/%05d/%s", y%100, perYear[y]*3+r.IntN(3), suffix[out[i].ApplicationType])
	}
	return out
}
