package synth

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Store is the kind of store a council's data is written to.
type Store string

// Stores the generator writes.
const (
	StoreSQLite   Store = "sqlite"
	StoreCSV      Store = "csv"
	StoreParquet  Store = "parquet"
	StoreDuckDB   Store = "duckdb"
	StoreJSON     Store = "json"
	StorePostgres Store = "postgres"
	StoreMySQL    Store = "mysql"
)

// Council is one council: its real name and GSS code, where its synthetic
// addresses lie, the store its data is written to and the dialect of each
// dataset.
type Council struct {
	ID    string // source id used in SQL, e.g. edinburgh
	Name  string // official name
	GSS   string // GSS code, e.g. S12000036
	Short string // short code used in organisation curies, e.g. EDH
	Town  string // main town, used in addresses
	// Districts are postcode outward codes in the council's area.
	Districts []string
	// Wards are the wards addresses are placed in.
	Wards []string
	// Store is where the demo writes this council's data.
	Store Store
	// Dialects maps a dataset name to the name of its local dialect; a
	// dataset missing here is not published by the council.
	Dialects map[string]string
}

// Dataset names.
const (
	SpendOver500         = "spend_over_500"
	PlanningApplications = "planning_applications"
)

// Datasets lists the standard datasets the generator makes.
var Datasets = []string{SpendOver500, PlanningApplications}

func districts(area string, lo, hi int) []string {
	var out []string
	for i := lo; i <= hi; i++ {
		out = append(out, fmt.Sprintf("%s%d", area, i))
	}
	return out
}

// DemoCouncils returns the six councils of the demo, each on a different
// store or dialect.
func DemoCouncils() []Council {
	return []Council{
		{ID: "edinburgh", Name: "The City of Edinburgh Council", GSS: "S12000036", Short: "EDH", Town: "Edinburgh",
			Districts: districts("EH", 1, 17),
			Wards:     []string{"Almond", "Pentland Hills", "Corstorphine/Murrayfield", "Inverleith", "Forth", "Leith", "Leith Walk", "City Centre", "Morningside", "Portobello/Craigmillar", "Liberton/Gilmerton", "Colinton/Fairmilehead"},
			Store:     StoreSQLite,
			Dialects:  map[string]string{SpendOver500: "leeds-2010-sqlite", PlanningApplications: "lga-sqlite"}},
		{ID: "glasgow", Name: "Glasgow City Council", GSS: "S12000049", Short: "GLG", Town: "Glasgow",
			Districts: districts("G", 1, 53),
			Wards:     []string{"Anderston/City/Yorkhill", "Partick East/Kelvindale", "Hillhead", "Govan", "Pollokshields", "Langside", "Linn", "Newlands/Auldburn", "Southside Central", "Calton", "Dennistoun", "Springburn/Robroyston"},
			Store:     StoreCSV,
			Dialects:  map[string]string{SpendOver500: "lga-csv", PlanningApplications: "idox-scrape-csv"}},
		{ID: "stirling", Name: "Stirling Council", GSS: "S12000030", Short: "STG", Town: "Stirling",
			Districts: []string{"FK7", "FK8", "FK9", "FK15", "FK16", "FK17", "FK18", "FK19", "FK20"},
			Wards:     []string{"Trossachs and Teith", "Forth and Endrick", "Dunblane and Bridge of Allan", "Stirling North", "Stirling West", "Stirling East", "Bannockburn"},
			Store:     StoreParquet,
			Dialects:  map[string]string{SpendOver500: "stirling-parquet", PlanningApplications: "astun-parquet"}},
		{ID: "fife", Name: "Fife Council", GSS: "S12000047", Short: "FIF", Town: "Kirkcaldy",
			Districts: districts("KY", 1, 16),
			Wards:     []string{"West Fife and Coastal Villages", "Dunfermline North", "Dunfermline Central", "Rosyth", "Inverkeithing and Dalgety Bay", "Kirkcaldy North", "Kirkcaldy Central", "Glenrothes West and Kinglassie", "Leven, Kennoway and Largo", "St Andrews", "Cupar", "Tay Bridgehead"},
			Store:     StoreDuckDB,
			Dialects:  map[string]string{SpendOver500: "salford-duckdb", PlanningApplications: "uniform-duckdb"}},
		{ID: "highland", Name: "The Highland Council", GSS: "S12000017", Short: "HLD", Town: "Inverness",
			Districts: append(append(districts("IV", 1, 3), districts("KW", 1, 3)...), "PH22", "PH33"),
			Wards:     []string{"Thurso and North West Caithness", "Wick and East Caithness", "North, West and Central Sutherland", "Dingwall and Seaforth", "Aird and Loch Ness", "Inverness West", "Inverness Central", "Inverness Ness-side", "Badenoch and Strathspey", "Fort William and Ardnamurchan", "Eilean a' Cheò"},
			Store:     StoreJSON,
			Dialects:  map[string]string{SpendOver500: "socrata-json", PlanningApplications: "digital-land-json"}},
		{ID: "dundee", Name: "Dundee City Council", GSS: "S12000042", Short: "DND", Town: "Dundee",
			Districts: districts("DD", 1, 5),
			Wards:     []string{"Strathmartine", "Lochee", "West End", "Coldside", "Maryfield", "North East", "East End", "The Ferry"},
			Store:     StoreCSV,
			Dialects:  map[string]string{SpendOver500: "leeds-2013-csv", PlanningApplications: "idox-portal-csv"}},
	}
}

// scottishCouncils are the 32 Scottish council areas (GSS S12, current
// codes), their official names and postcode areas, for load tests that want
// more councils than the demo has.
var scottishCouncils = [][4]string{
	{"aberdeen", "Aberdeen City Council", "S12000033", "AB"},
	{"aberdeenshire", "Aberdeenshire Council", "S12000034", "AB"},
	{"angus", "Angus Council", "S12000041", "DD"},
	{"argyll_and_bute", "Argyll and Bute Council", "S12000035", "PA"},
	{"edinburgh", "The City of Edinburgh Council", "S12000036", "EH"},
	{"clackmannanshire", "Clackmannanshire Council", "S12000005", "FK"},
	{"dumfries_and_galloway", "Dumfries and Galloway Council", "S12000006", "DG"},
	{"dundee", "Dundee City Council", "S12000042", "DD"},
	{"east_ayrshire", "East Ayrshire Council", "S12000008", "KA"},
	{"east_dunbartonshire", "East Dunbartonshire Council", "S12000045", "G"},
	{"east_lothian", "East Lothian Council", "S12000010", "EH"},
	{"east_renfrewshire", "East Renfrewshire Council", "S12000011", "G"},
	{"falkirk", "Falkirk Council", "S12000014", "FK"},
	{"fife", "Fife Council", "S12000047", "KY"},
	{"glasgow", "Glasgow City Council", "S12000049", "G"},
	{"highland", "The Highland Council", "S12000017", "IV"},
	{"inverclyde", "Inverclyde Council", "S12000018", "PA"},
	{"midlothian", "Midlothian Council", "S12000019", "EH"},
	{"moray", "The Moray Council", "S12000020", "IV"},
	{"eilean_siar", "Comhairle nan Eilean Siar", "S12000013", "HS"},
	{"north_ayrshire", "North Ayrshire Council", "S12000021", "KA"},
	{"north_lanarkshire", "North Lanarkshire Council", "S12000050", "ML"},
	{"orkney", "Orkney Islands Council", "S12000023", "KW"},
	{"perth_and_kinross", "Perth and Kinross Council", "S12000048", "PH"},
	{"renfrewshire", "Renfrewshire Council", "S12000038", "PA"},
	{"scottish_borders", "Scottish Borders Council", "S12000026", "TD"},
	{"shetland", "Shetland Islands Council", "S12000027", "ZE"},
	{"south_ayrshire", "South Ayrshire Council", "S12000028", "KA"},
	{"south_lanarkshire", "South Lanarkshire Council", "S12000029", "ML"},
	{"stirling", "Stirling Council", "S12000030", "FK"},
	{"west_dunbartonshire", "West Dunbartonshire Council", "S12000039", "G"},
	{"west_lothian", "West Lothian Council", "S12000040", "EH"},
}

// LoadCouncils returns n councils for load tests: the six demo councils
// first, then the other Scottish councils in a fixed order (at most 32).
// Councils after the demo six get dialects in turn from those usable on
// any store, and a store of the given kind.
func LoadCouncils(n int, store Store) []Council {
	// The shapes the demo has not got come first, so tests loading a few
	// councils into PostgreSQL and MariaDB cover them.
	return LoadCouncilsFrom(n, store, append(append([]string{}, ShapeSpendDialects...), PlainSpendDialects...))
}

// PlainSpendDialects are the spend shapes whose amount is one local
// column (a store's own GROUP BY can total it: the benchmarks' floors).
var PlainSpendDialects = []string{"leeds-2010-sqlite", "lga-csv", "stirling-parquet", "salford-duckdb", "socrata-json", "leeds-2013-csv"}

// ShapeSpendDialects are the shapes of issue 11 the demo has not got:
// a month or a financial period for a date, composite keys, credit notes
// by type, redaction markers.
var ShapeSpendDialects = []string{"gateshead-2010", "stirling-periods", "manchester"}

// LoadCouncilsFrom is LoadCouncils with the spend shapes the councils
// after the demo six take in turn.
func LoadCouncilsFrom(n int, store Store, spend []string) []Council {
	out := DemoCouncils()
	have := map[string]bool{}
	for _, c := range out {
		have[c.GSS] = true
	}
	plan := []string{"lga-sqlite", "idox-scrape-csv", "astun-parquet", "uniform-duckdb", "digital-land-json", "idox-portal-csv"}
	k := 0
	for _, sc := range scottishCouncils {
		if have[sc[2]] {
			continue
		}
		name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(sc[1], "The "), " Council"), " City")
		out = append(out, Council{ID: sc[0], Name: sc[1], GSS: sc[2], Short: strings.ToUpper(sc[0][:3]), Town: name,
			Districts: districts(sc[3], 1, 9),
			Wards:     []string{name + " North", name + " South", name + " East", name + " West", name + " Central"},
			Dialects:  map[string]string{SpendOver500: spend[k%len(spend)], PlanningApplications: plan[k%len(plan)]}})
		k++
	}
	if n > len(out) {
		n = len(out)
	}
	out = out[:n]
	for i := range out {
		out[i].Store = store
	}
	return out
}

// rng returns the random stream of one council and dataset: a PCG seeded
// from a hash of the seed, the council's GSS code and the dataset name, so
// streams are independent of one another and of the order they are made in.
func rng(seed uint64, gss, dataset string) *rand.Rand {
	h := sha256.Sum256([]byte(fmt.Sprintf("councilgen/v1|%d|%s|%s", seed, gss, dataset)))
	return rand.New(rand.NewPCG(binary.LittleEndian.Uint64(h[:8]), binary.LittleEndian.Uint64(h[8:16])))
}
