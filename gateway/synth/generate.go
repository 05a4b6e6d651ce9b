package synth

// Options size a generation run.
type Options struct {
	Seed uint64
	// FY is the financial year the records fall in (default 2024, i.e.
	// 2024-25: both its two-digit years read back as 20xx).
	FY FinancialYear
	// SpendRows and PlanningRows are rows per council (defaults 400, 120).
	SpendRows    int
	PlanningRows int
}

// Defaults for Options.
const (
	DefaultSeed         = 42
	DefaultFY           = FinancialYear(2024)
	DefaultSpendRows    = 400
	DefaultPlanningRows = 120
)

func (o Options) withDefaults() Options {
	if o.FY == 0 {
		o.FY = DefaultFY
	}
	if o.SpendRows == 0 {
		o.SpendRows = DefaultSpendRows
	}
	if o.PlanningRows == 0 {
		o.PlanningRows = DefaultPlanningRows
	}
	return o
}

// Generated is the canonical records of one council.
type Generated struct {
	Council  Council
	FY       FinancialYear
	Spend    []Spend
	Planning []Planning
}

// Generate makes the records of council c for each dataset it publishes.
func Generate(o Options, c Council) *Generated {
	o = o.withDefaults()
	g := &Generated{Council: c, FY: o.FY}
	if DialectOf(c, SpendOver500) != nil {
		g.Spend = GenerateSpend(o.Seed, c, o.FY, o.SpendRows)
	}
	if DialectOf(c, PlanningApplications) != nil {
		g.Planning = GeneratePlanning(o.Seed, c, o.FY, o.PlanningRows)
	}
	return g
}

// Local returns the council's tables in their local shapes, one per
// published dataset, in the order of Datasets.
func (g *Generated) Local() []*Table {
	var out []*Table
	for _, ds := range Datasets {
		if d := DialectOf(g.Council, ds); d != nil {
			out = append(out, d.Render(g.Council, g.FY, g.Records(ds)))
		}
	}
	return out
}

// Canonical returns the council's standardised rows of a dataset (see
// Canonical).
func (g *Generated) Canonical(dataset string) *Table {
	return Canonical(g.Council, dataset, g.Records(dataset))
}
