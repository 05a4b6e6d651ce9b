package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/councildata/gateway/gateway"
)

// Agreement is a data-sharing agreement as its YAML file records it,
// following the ICO data sharing code (see policies/README.md). The policy
// reads the file itself, as data.agreements[<id>]; this type exists to
// validate it strictly.
type Agreement struct {
	ID                     string         `yaml:"id"`
	Version                int            `yaml:"version"`
	Status                 string         `yaml:"status"` // draft|active|suspended|terminated
	Title                  string         `yaml:"title"`
	ControllerRelationship string         `yaml:"controller_relationship"` // separate|joint
	Parties                Parties        `yaml:"parties"`
	Purpose                string         `yaml:"purpose"`
	PurposeCodes           []string       `yaml:"purpose_codes"`
	LawfulBasis            LawfulBasis    `yaml:"lawful_basis"`
	Necessity              string         `yaml:"necessity"`
	Datasets               []DatasetTerms `yaml:"datasets"`
	RowCap                 int64          `yaml:"row_cap"`
	OnwardSharing          string         `yaml:"onward_sharing"`
	SharingSchedule        Schedule       `yaml:"sharing_schedule"`
	TransferSecurity       *Free          `yaml:"transfer_security"`
	DataQuality            *Free          `yaml:"data_quality"`
	Retention              *Free          `yaml:"retention"`
	IndividualRights       *Free          `yaml:"individual_rights"`
	DPIA                   *DPIA          `yaml:"dpia"`
	BreachProcedure        string         `yaml:"breach_procedure"`
	Review                 Review         `yaml:"review"`
	Termination            *Free          `yaml:"termination"`
	Signatories            []Signatory    `yaml:"signatories"`
	Notes                  string         `yaml:"notes"`
}

// Parties are who discloses and who receives.
type Parties struct {
	// Disclosing are councils by source id or GSS code, or "*" for every
	// council on the gateway.
	Disclosing []string  `yaml:"disclosing"`
	Receiving  Receiving `yaml:"receiving"`
	Contacts   []Contact `yaml:"contacts"`
}

// Receiving names the receiving party: organisations by name and/or roles.
// When both are given, a requester must match both.
type Receiving struct {
	Organisations []string `yaml:"organisations"`
	Roles         []string `yaml:"roles"`
}

// Contact is a party's governance contact.
type Contact struct {
	Organisation string `yaml:"organisation"`
	Role         string `yaml:"role"` // disclosing_controller, receiving_controller, joint_controller
	DPOContact   string `yaml:"dpo_contact"`
	ICOReg       string `yaml:"ico_reg"`
}

// LawfulBasis records the UK GDPR basis of the sharing.
type LawfulBasis struct {
	Article6            string `yaml:"article6"`
	LegalPower          string `yaml:"legal_power"`
	Article9Condition   string `yaml:"article9_condition"`
	DPA2018Schedule1    string `yaml:"dpa2018_schedule1_condition"`
	CriminalOffenceData bool   `yaml:"criminal_offence_data"`
}

// DatasetTerms are what an agreement allows of one standard dataset.
type DatasetTerms struct {
	Dataset        string               `yaml:"dataset"`
	Description    string               `yaml:"description"`
	ColumnsAllowed []string             `yaml:"columns_allowed"` // standard column names, or "*"
	ColumnsDenied  []string             `yaml:"columns_denied"`
	RowFilter      string               `yaml:"row_filter"` // DuckDB SQL over the standard columns
	Masks          map[string]MaskTerms `yaml:"masks"`
	Granularity    string               `yaml:"granularity"` // record|aggregate
	MinCell        int                  `yaml:"min_cell"`    // aggregate only
	// Dimensions (aggregate only) are the columns the data may be grouped
	// and filtered by: "column", or "column:month" (quarter, year) for a
	// date grouped no finer; council and council_gss always are.
	Dimensions []string `yaml:"dimensions"`
	// Measures (aggregate only) are the columns that may be summed and
	// averaged; count(*) is always allowed.
	Measures     []string `yaml:"measures"`
	RowCap       int64    `yaml:"row_cap"`
	PersonalData bool     `yaml:"personal_data"`
	// Coverage "all": a query of the dataset under these terms must cover
	// every council it would read, or it is refused (a total that would
	// mislead if a council were silently missing). Absent: "available".
	Coverage string `yaml:"coverage"`
}

// MaskTerms is one column's mask; the fields are gateway.Mask's.
type MaskTerms struct {
	Kind  string `yaml:"kind"`
	Value string `yaml:"value"`
	N     *int   `yaml:"n"`
	Unit  string `yaml:"unit"`
	When  string `yaml:"when"`
}

// Schedule is when the sharing may happen; dates are YYYY-MM-DD and
// inclusive, compared with the request's UTC date. No end means open-ended.
type Schedule struct {
	Start     string `yaml:"start"`
	End       string `yaml:"end"`
	Frequency string `yaml:"frequency"`
}

// DPIA records the data protection impact assessment.
type DPIA struct {
	Done         bool   `yaml:"done"`
	Ref          string `yaml:"ref"`
	Outcome      string `yaml:"outcome"`
	DPOConsulted bool   `yaml:"dpo_consulted"`
}

// Review is when the agreement is reviewed.
type Review struct {
	LastReview string   `yaml:"last_review"`
	NextReview string   `yaml:"next_review"`
	Triggers   []string `yaml:"triggers"`
}

// Signatory signed the agreement for a party.
type Signatory struct {
	Organisation string `yaml:"organisation"`
	Name         string `yaml:"name"`
	Position     string `yaml:"position"`
	Date         string `yaml:"date"`
}

// Free is a block of free-text governance fields (retention, transfer
// security...) recorded for people, not read by the policy.
type Free map[string]any

var (
	idPattern   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	datePattern = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

	statuses      = []string{"draft", "active", "suspended", "terminated"}
	relationships = []string{"separate", "joint"}
	article6Bases = []string{"consent", "contract", "legal_obligation", "vital_interests", "public_task", "legitimate_interests"}
	granularities = []string{"record", "aggregate"}
	// dimensionGrains are how coarsely a date dimension may be grouped.
	dimensionGrains = []string{"month", "quarter", "year"}
	maskKinds       = []string{gateway.MaskNull, gateway.MaskRedact, gateway.MaskHash, gateway.MaskKeepPrefix, gateway.MaskPostcodeSector, gateway.MaskTruncateDate, gateway.MaskRound}
	truncateUnits   = []string{"month", "year"}
	reservedIDs     = []string{"own-council", "audit-governance", "governance-catalog"}
)

// fileError is a mistake in one file, at a line when known.
type fileError struct {
	File string
	Line int
	Msg  string
}

func (e *fileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// parseAgreement validates one agreement file. dirName is the name of the
// directory holding it, which must be the agreement's id.
func parseAgreement(file, dirName string, src []byte) (*Agreement, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, yamlError(file, err)
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, &fileError{File: file, Line: 1, Msg: "an agreement file holds one YAML mapping (id, version, status, ...)"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	var a Agreement
	if err := dec.Decode(&a); err != nil {
		return nil, yamlError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &fileError{File: file, Line: extra.Line, Msg: "an agreement file holds one YAML document"}
	}
	v := validator{file: file, root: root.Content[0]}
	v.check(&a, dirName)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return &a, nil
}

// yamlError turns a yaml.v3 error ("yaml: line 3: ...") into file:line.
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, m := range te.Errors {
			errs = append(errs, lineMessage(file, m))
		}
		return errors.Join(errs...)
	}
	return lineMessage(file, strings.TrimPrefix(err.Error(), "yaml: "))
}

var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

func lineMessage(file, msg string) error {
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		var line int
		fmt.Sscan(m[1], &line)
		msg = strings.Replace(m[2], "in type policy.", "in ", 1)
		return &fileError{File: file, Line: line, Msg: msg}
	}
	return &fileError{File: file, Msg: msg}
}

type validator struct {
	file string
	root *yaml.Node
	errs []error
}

// line finds the line of the node at path (mapping keys and sequence
// indexes); when the path does not exist it gives the nearest ancestor's.
func (v *validator) line(path ...any) int {
	n := v.root
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch p := p.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && p < len(n.Content) {
				next = n.Content[p]
			}
		}
		if next == nil {
			return line
		}
		n, line = next, next.Line
	}
	return line
}

func (v *validator) errorf(path []any, format string, args ...any) {
	v.errs = append(v.errs, &fileError{File: v.file, Line: v.line(path...), Msg: fmt.Sprintf(format, args...)})
}

func p(path ...any) []any { return path }

func (v *validator) date(path []any, name, d string, required bool) (time.Time, bool) {
	if d == "" {
		if required {
			v.errorf(path, "%s is required (YYYY-MM-DD)", name)
		}
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02", d)
	if err != nil || !datePattern.MatchString(d) {
		v.errorf(path, "%s %q is not a date like 2025-04-01", name, d)
		return time.Time{}, false
	}
	return t, true
}

func oneOf(s string, set []string) bool { return slices.Contains(set, s) }

func (v *validator) check(a *Agreement, dirName string) {
	switch {
	case a.ID == "":
		v.errorf(p(), "id is required")
	case !idPattern.MatchString(a.ID):
		v.errorf(p("id"), "id %q must be lower case letters, digits, '.', '-' or '_'", a.ID)
	case oneOf(a.ID, reservedIDs):
		v.errorf(p("id"), "id %q is reserved", a.ID)
	case a.ID != dirName:
		v.errorf(p("id"), "id %q must match the directory the file is in (agreements/%s/)", a.ID, dirName)
	}
	if a.Version < 1 {
		v.errorf(p("version"), "version must be a whole number from 1")
	}
	if !oneOf(a.Status, statuses) {
		v.errorf(p("status"), "status %q is not one of %s", a.Status, strings.Join(statuses, ", "))
	}
	if strings.TrimSpace(a.Title) == "" {
		v.errorf(p("title"), "title is required")
	}
	if a.ControllerRelationship != "" && !oneOf(a.ControllerRelationship, relationships) {
		v.errorf(p("controller_relationship"), "controller_relationship %q is not one of %s", a.ControllerRelationship, strings.Join(relationships, ", "))
	}

	// Parties.
	if len(a.Parties.Disclosing) == 0 {
		v.errorf(p("parties", "disclosing"), "parties.disclosing must list councils (source ids or GSS codes) or \"*\"")
	}
	for i, d := range a.Parties.Disclosing {
		if strings.TrimSpace(d) == "" {
			v.errorf(p("parties", "disclosing", i), "parties.disclosing has an empty entry")
		}
	}
	r := a.Parties.Receiving
	if len(r.Organisations) == 0 && len(r.Roles) == 0 {
		v.errorf(p("parties", "receiving"), "parties.receiving must name organisations and/or roles")
	}
	for i, o := range r.Organisations {
		if strings.TrimSpace(o) == "" || o == "*" {
			v.errorf(p("parties", "receiving", "organisations", i), "parties.receiving.organisations entries must be organisation names")
		}
	}
	for i, o := range r.Roles {
		if strings.TrimSpace(o) == "" || o == "*" {
			v.errorf(p("parties", "receiving", "roles", i), "parties.receiving.roles entries must be role names")
		}
	}

	// Purpose and lawful basis.
	if strings.TrimSpace(a.Purpose) == "" {
		v.errorf(p("purpose"), "purpose is required: say in precise terms what the sharing is for")
	}
	if len(a.PurposeCodes) == 0 {
		v.errorf(p("purpose_codes"), "purpose_codes must list at least one purpose")
	}
	for i, c := range a.PurposeCodes {
		if strings.TrimSpace(c) == "" {
			v.errorf(p("purpose_codes", i), "purpose_codes has an empty entry")
		}
	}
	if !oneOf(a.LawfulBasis.Article6, article6Bases) {
		v.errorf(p("lawful_basis", "article6"), "lawful_basis.article6 %q is not one of %s", a.LawfulBasis.Article6, strings.Join(article6Bases, ", "))
	}

	// Datasets.
	if len(a.Datasets) == 0 {
		v.errorf(p("datasets"), "datasets must list at least one dataset")
	}
	seen := map[string]bool{}
	for i, ds := range a.Datasets {
		v.checkDataset(i, ds, seen)
	}
	if a.RowCap < 0 {
		v.errorf(p("row_cap"), "row_cap must not be negative")
	}

	// Dates.
	start, okStart := v.date(p("sharing_schedule", "start"), "sharing_schedule.start", a.SharingSchedule.Start, true)
	end, okEnd := v.date(p("sharing_schedule", "end"), "sharing_schedule.end", a.SharingSchedule.End, false)
	if okStart && okEnd && end.Before(start) {
		v.errorf(p("sharing_schedule", "end"), "sharing_schedule.end %s is before its start %s", a.SharingSchedule.End, a.SharingSchedule.Start)
	}
	v.date(p("review", "last_review"), "review.last_review", a.Review.LastReview, false)
	v.date(p("review", "next_review"), "review.next_review", a.Review.NextReview, false)
	for i, s := range a.Signatories {
		v.date(p("signatories", i, "date"), "signatories date", s.Date, false)
	}
}

func (v *validator) checkDataset(i int, ds DatasetTerms, seen map[string]bool) {
	at := func(path ...any) []any { return append(p("datasets", i), path...) }
	if ds.Dataset == "" {
		v.errorf(at(), "datasets[%d].dataset is required (a standard dataset name)", i)
	} else if seen[ds.Dataset] {
		v.errorf(at("dataset"), "dataset %q appears twice in one agreement", ds.Dataset)
	}
	seen[ds.Dataset] = true
	if len(ds.ColumnsAllowed) == 0 {
		v.errorf(at(), "dataset %q: columns_allowed must list the standard columns allowed, or \"*\" for all", ds.Dataset)
	}
	allowed := map[string]bool{}
	for j, c := range ds.ColumnsAllowed {
		if strings.TrimSpace(c) == "" {
			v.errorf(at("columns_allowed", j), "dataset %q: columns_allowed has an empty entry", ds.Dataset)
		}
		allowed[c] = true
	}
	if strings.Contains(ds.RowFilter, ";") {
		v.errorf(at("row_filter"), "dataset %q: row_filter is one SQL condition and must not contain ';'", ds.Dataset)
	}
	switch ds.Granularity {
	case "record":
		if ds.MinCell != 0 {
			v.errorf(at("min_cell"), "dataset %q: min_cell applies only to granularity aggregate", ds.Dataset)
		}
		if len(ds.Dimensions) > 0 || len(ds.Measures) > 0 {
			v.errorf(at("dimensions"), "dataset %q: dimensions and measures apply only to granularity aggregate", ds.Dataset)
		}
	case "aggregate":
		if ds.MinCell < 1 {
			v.errorf(at("granularity"), "dataset %q: granularity aggregate needs min_cell, the smallest group that may be shown (e.g. 10)", ds.Dataset)
		}
	default:
		v.errorf(at("granularity"), "dataset %q: granularity %q is not one of %s", ds.Dataset, ds.Granularity, strings.Join(granularities, ", "))
	}
	for j, d := range ds.Dimensions {
		col, grain, hasGrain := strings.Cut(d, ":")
		switch {
		case strings.TrimSpace(col) == "" || col == "*":
			v.errorf(at("dimensions", j), "dataset %q: dimensions name columns one by one (a column, or column:month, column:quarter, column:year)", ds.Dataset)
		case hasGrain && !oneOf(grain, dimensionGrains):
			v.errorf(at("dimensions", j), "dataset %q: dimension %q: the grain after ':' must be one of %s", ds.Dataset, d, strings.Join(dimensionGrains, ", "))
		case !allowed["*"] && !allowed[col] && col != "council" && col != "council_gss":
			v.errorf(at("dimensions", j), "dataset %q: dimension %q is not in columns_allowed", ds.Dataset, col)
		}
	}
	for j, m := range ds.Measures {
		if strings.TrimSpace(m) == "" || m == "*" || strings.Contains(m, ":") {
			v.errorf(at("measures", j), "dataset %q: measures name columns one by one", ds.Dataset)
		} else if !allowed["*"] && !allowed[m] {
			v.errorf(at("measures", j), "dataset %q: measure %q is not in columns_allowed", ds.Dataset, m)
		}
	}
	if ds.RowCap < 0 {
		v.errorf(at("row_cap"), "dataset %q: row_cap must not be negative", ds.Dataset)
	}
	if ds.Coverage != "" && ds.Coverage != "available" && ds.Coverage != "all" {
		v.errorf(at("coverage"), "dataset %q: coverage %q is not \"available\" (the default) or \"all\"", ds.Dataset, ds.Coverage)
	}
	cols := make([]string, 0, len(ds.Masks))
	for c := range ds.Masks {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	for _, c := range cols {
		m := ds.Masks[c]
		mp := at("masks", c)
		if !allowed["*"] && !allowed[c] {
			v.errorf(mp, "dataset %q: mask for column %q, which columns_allowed does not allow", ds.Dataset, c)
		}
		kp := append(mp, "kind")
		switch m.Kind {
		case gateway.MaskKeepPrefix:
			if m.N == nil || *m.N < 1 {
				v.errorf(kp, "mask keep_prefix for column %q needs n, the number of characters kept (1 or more)", c)
			}
		case gateway.MaskTruncateDate:
			if !oneOf(m.Unit, truncateUnits) {
				v.errorf(kp, "mask truncate_date for column %q needs unit month or year", c)
			}
		case gateway.MaskRound:
		case gateway.MaskNull, gateway.MaskRedact, gateway.MaskHash, gateway.MaskPostcodeSector:
		default:
			v.errorf(kp, "unknown mask kind %q for column %q (want %s)", m.Kind, c, strings.Join(maskKinds, ", "))
		}
		if m.Value != "" && m.Kind != gateway.MaskRedact {
			v.errorf(mp, "mask for column %q: value applies only to kind redact", c)
		}
		if m.Unit != "" && m.Kind != gateway.MaskTruncateDate {
			v.errorf(mp, "mask for column %q: unit applies only to kind truncate_date", c)
		}
		if m.N != nil && m.Kind != gateway.MaskKeepPrefix && m.Kind != gateway.MaskRound {
			v.errorf(mp, "mask for column %q: n applies only to kinds keep_prefix and round", c)
		}
		if strings.Contains(m.When, ";") {
			v.errorf(mp, "mask for column %q: when is one SQL condition and must not contain ';'", c)
		}
	}
}

// Loaded is an agreement as the policy in force holds it: the file it
// came from (relative to the policy directory) and its text.
type Loaded struct {
	Agreement
	File string
	YAML string
}

// Standing is how an agreement stands on a day, for governance officers:
// State is its status (draft, suspended, terminated) when not active, and
// otherwise not-started, expired or in-force by its sharing schedule;
// ReviewOverdue is set when its next review date has passed.
type Standing struct {
	State         string `json:"state"`
	ReviewOverdue bool   `json:"review_overdue"`
}

// StandingOn says how the agreement stands on day (its dates are days,
// compared as the policy compares them: an agreement ending on a day is in
// force all that day).
func (a Agreement) StandingOn(day time.Time) Standing {
	today := day.UTC().Format(time.DateOnly)
	date := func(s string) string { return s[:min(len(s), 10)] } // as the policy reads them
	st := Standing{State: "in-force"}
	switch {
	case a.Status != "active":
		st.State = a.Status
	case a.SharingSchedule.Start != "" && today < date(a.SharingSchedule.Start):
		st.State = "not-started"
	case a.SharingSchedule.End != "" && today > date(a.SharingSchedule.End):
		st.State = "expired"
	}
	st.ReviewOverdue = a.Review.NextReview != "" && today > date(a.Review.NextReview) && st.State != "terminated"
	return st
}
