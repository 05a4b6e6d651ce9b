package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/catalog"
)

// Policy is how the engine asks who may read what.
type Policy struct {
	// Decider decides; nil turns policy off (every requester reads
	// everything), for development only.
	Decider gateway.Decider
	// HashSalt keys the salted-hash mask.
	HashSalt string
	// Audit, if set, records every request: allowed, denied or failed.
	Audit Auditor
}

// policyInput describes every council table the plan reads.
func (p *plan) policyInput(req Request) gateway.PolicyInput {
	in := gateway.PolicyInput{Action: req.action(), Purpose: req.Purpose, CaseRef: req.CaseRef, QueryID: req.QueryID,
		Time: req.now().UTC().Format(time.RFC3339), Tables: []gateway.PolicyTable{}}
	if req.Requester != nil {
		in.Requester = *req.Requester
	}
	for _, v := range p.direct {
		in.Tables = append(in.Tables, gateway.PolicyTable{Source: v.source.Config.ID, Council: v.source.Config.Council,
			GSS: v.source.Config.GSS, Table: v.table, Columns: nonNil(v.used)})
	}
	for _, v := range p.std {
		for i, m := range v.dataset.Members {
			if v.members[i].pruned {
				continue // not read at all
			}
			in.Tables = append(in.Tables, gateway.PolicyTable{Source: m.Source.Config.ID, Council: m.Source.Config.Council,
				GSS: m.Source.Config.GSS, Table: m.Mapping.Table, Dataset: v.dataset.Config.Name, Columns: nonNil(v.usedColumns())})
		}
	}
	return in
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// authorize asks the policy about the plan and attaches each table's
// decision. A denied table fails the whole query with the policy's reason.
func (e *Engine) authorize(ctx context.Context, req Request, p *plan) (*gateway.PolicyInput, *gateway.Decision, error) {
	in := p.policyInput(req)
	var dec *gateway.Decision
	if e.policy.Decider == nil {
		dec = &gateway.Decision{Revision: "disabled"}
		for range in.Tables {
			dec.Tables = append(dec.Tables, gateway.TableDecision{Allowed: true, Reason: "policy disabled"})
		}
	} else {
		var err error
		dec, err = e.policy.Decider.Decide(ctx, in)
		if dec == nil || len(dec.Tables) != len(in.Tables) {
			return &in, dec, gateway.Wrap(gateway.CodeForbidden, err, "access denied: the policy could not decide")
		}
	}
	// attach, in the order policyInput listed the tables
	k := 0
	for _, v := range p.direct {
		v.dec = &dec.Tables[k]
		k++
	}
	// A council the query's condition on council leaves out is asked about
	// only when pruning is off. Its decision must not change the query's:
	// where it is denied, or its terms reach beyond its own rows (aggregate
	// only, a row cap), it is not read, as with pruning on.
	notRead := map[int]bool{}
	for _, v := range p.std {
		v.decs = make([]*gateway.TableDecision, len(v.members))
		for i := range v.dataset.Members {
			s := v.members[i]
			if s.pruned {
				v.decs[i] = &gateway.TableDecision{Allowed: true, Reason: "not read"}
				continue
			}
			if d := &dec.Tables[k]; s.excluded && (!d.Allowed || d.AggregateOnly || d.RowCap > 0) {
				s.pruned = true
				notRead[k] = true
				v.decs[i] = &gateway.TableDecision{Allowed: true, Reason: "not read: the query's condition on council leaves it out"}
				k++
				continue
			}
			v.decs[i] = &dec.Tables[k]
			k++
		}
	}
	// A council's own table that the policy denies is answered as one
	// that does not exist (notVisible), so that neither the status nor the
	// message tells whether it exists: only its own staff may read it
	// directly, and no purpose changes that.
	if e.policy.Decider != nil {
		for i, v := range p.direct {
			if !dec.Tables[i].Allowed {
				return &in, dec, notVisible(v.source.Config.ID, v.written)
			}
		}
	}
	// One line per distinct reason, naming the tables it applies to.
	var reasons []string
	tablesOf := map[string][]string{}
	for i, d := range dec.Tables {
		if d.Allowed || notRead[i] {
			continue
		}
		t := in.Tables[i]
		name := t.Source + "." + t.Table
		if t.Dataset != "" {
			name = "std." + t.Dataset + " from " + t.Council
		}
		reason := d.Reason
		if reason == "" {
			reason = "no policy allows it"
		}
		if _, seen := tablesOf[reason]; !seen {
			reasons = append(reasons, reason)
		}
		tablesOf[reason] = append(tablesOf[reason], name)
	}
	if len(reasons) > 0 {
		parts := make([]string, len(reasons))
		for i, r := range reasons {
			parts[i] = strings.Join(tablesOf[r], ", ") + ": " + r
		}
		return &in, dec, gateway.Errorf(gateway.CodeForbidden, "access denied: %s", strings.Join(parts, "; "))
	}
	for i, d := range dec.Tables {
		if notRead[i] {
			continue
		}
		for col, m := range d.Masks {
			if err := validMask(m); err != nil {
				return &in, dec, gateway.Errorf(gateway.CodeForbidden, "access denied: the policy's mask on %q is not valid (%v)", col, err)
			}
		}
	}
	return &in, dec, nil
}

// notVisible is the answer, under policy, for a council's table that does
// not exist and for one the requester may not read: the same words, the
// same status.
func notVisible(source, table string) error {
	return gateway.Errorf(gateway.CodeNotFound, "source %q has no table %q that you may read; councils' own tables are read by their own staff, and everyone else reads the std datasets (GET /v1/catalog?purpose=... lists what you may read)", source, table)
}

func validMask(m gateway.Mask) error {
	switch m.Kind {
	case gateway.MaskNull, gateway.MaskRedact, gateway.MaskHash, gateway.MaskPostcodeSector, gateway.MaskRound:
	case gateway.MaskKeepPrefix:
		if m.N < 0 {
			return fmt.Errorf("keep_prefix needs n >= 0")
		}
	case gateway.MaskTruncateDate:
		if m.Unit != "month" && m.Unit != "year" {
			return fmt.Errorf("truncate_date needs unit month or year, not %q", m.Unit)
		}
	default:
		return fmt.Errorf("unknown mask kind %q", m.Kind)
	}
	return nil
}

// applyPolicy adjusts the scans to the decisions: a scan whose rows the
// policy filters or masks fetches every column its conditions may need,
// never sends a filter on a masked column to the store (the store would
// compare raw values), and takes no limit below a row filter (a limit
// before the row filter would drop rows the query is owed). A top-N's order
// goes with its limit, and never orders a masked column.
func (p *plan) applyPolicy() {
	touch := func(s *scan, d *gateway.TableDecision, masked func(string) (string, bool)) {
		if d == nil || (d.RowFilter == "" && len(d.Masks) == 0 && !d.AggregateOnly && d.RowCap == 0) {
			return
		}
		// The row filter and the masks' conditions read columns of their
		// own: policyColumns adds them to the scan.
		if d.RowFilter != "" {
			s.policyExprs = append(s.policyExprs, d.RowFilter)
		}
		for _, m := range d.Masks {
			if m.When != "" {
				s.policyExprs = append(s.policyExprs, m.When)
			}
		}
		kept := s.req.Filters[:0]
		for _, f := range s.req.Filters {
			if col, std, isMasked := maskedLeaf(f, masked); !isMasked {
				kept = append(kept, f)
			} else {
				s.note("filter on %s is not offered: the policy masks %s, and the store would compare raw values", col, std)
			}
		}
		// A limit counts rows the query sees: it may stay under masks
		// alone, which keep every row, but not below a row filter or an
		// aggregate-only rule, nor once a filter it relied on is taken back.
		// A top-N's order may not be on a masked column either: the store
		// would order raw values, the query masked ones.
		orderMasked := false
		for _, o := range s.req.OrderBy {
			if _, isMasked := masked(o.Column); isMasked {
				orderMasked = true
			}
		}
		if d.RowFilter != "" || d.AggregateOnly || len(kept) < len(s.req.Filters) || orderMasked {
			if s.req.Limit >= 0 {
				s.note("LIMIT is not offered: %s", limitReason(d, orderMasked))
			}
			s.req.Limit = -1
			s.req.OrderBy = nil // an order is only ever offered with its limit
		}
		s.req.Filters = kept
	}
	for _, v := range p.direct {
		touch(v.scan, v.dec, func(col string) (string, bool) {
			for m := range v.dec.Masks {
				if strings.EqualFold(m, col) {
					return m, true
				}
			}
			return "", false
		})
	}
	for _, v := range p.std {
		for i, m := range v.dataset.Members {
			d := v.decs[i]
			v.members[i].policyMember = &v.dataset.Members[i]
			touch(v.members[i], d, func(local string) (string, bool) {
				for std, cm := range m.Mapping.Columns {
					if strings.EqualFold(cm.From, local) {
						if _, ok := d.Masks[std]; ok {
							return std, true
						}
					}
				}
				return "", false
			})
		}
	}
	for _, s := range p.scans {
		if s.allColumns {
			s.req.Columns = nil
			for _, f := range s.table.Schema.Fields() {
				s.req.Columns = append(s.req.Columns, f.Name)
			}
		}
	}
}

// policyColumns adds to each scan the columns its policy's row filter and
// mask conditions read (for a standard dataset, the council's columns they
// map from), so the scan fetches those, not every column. Where an
// expression cannot be parsed, the scan fetches every column, and DuckDB
// reports the expression's error when the query runs.
func (e *Engine) policyColumns(ctx context.Context, p *plan) {
	for _, s := range p.scans {
		if len(s.policyExprs) == 0 || s.allColumns {
			continue
		}
		names, err := e.columnsOf(ctx, s.policyExprs)
		if err != nil {
			s.allColumns = true
		}
		want := map[string]bool{}
		for _, c := range s.req.Columns {
			want[strings.ToLower(c)] = true
		}
		for _, n := range names {
			if m := s.policyMember; m != nil {
				if cm, ok := m.Mapping.Columns[n]; ok {
					want[strings.ToLower(cm.From)] = true
				}
				continue // council, council_gss, or unmapped (NULL)
			}
			want[n] = true
		}
		s.req.Columns = s.req.Columns[:0]
		for _, f := range s.table.Schema.Fields() {
			if s.allColumns || want[strings.ToLower(f.Name)] {
				s.req.Columns = append(s.req.Columns, f.Name)
			}
		}
	}
}

// columnsOf returns the (lower-cased) column names the SQL expressions
// read, using DuckDB's parser.
func (e *Engine) columnsOf(ctx context.Context, exprs []string) ([]string, error) {
	e.parseMu.Lock()
	var serialized string
	err := e.parseConn.QueryRowContext(ctx, "SELECT json_serialize_sql($1::VARCHAR)::VARCHAR", "SELECT "+strings.Join(exprs, ", ")).Scan(&serialized)
	e.parseMu.Unlock()
	if err != nil {
		return nil, err
	}
	var root node
	dec := json.NewDecoder(strings.NewReader(serialized))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return nil, err
	}
	if isErr, _ := root["error"].(bool); isErr {
		return nil, fmt.Errorf("policy expression: %v", root["error_message"])
	}
	var names []string
	bad := false
	walk(root, false, func(n node, _ bool) bool {
		switch n["class"] {
		case "COLUMN_REF":
			// Every part: "t.col", "col.field" (a struct) and "col" all
			// name col somewhere; an extra name only reads one more column.
			for _, part := range asSlice(n["column_names"]) {
				names = append(names, strings.ToLower(str(part)))
			}
		case "STAR", "SUBQUERY":
			bad = true // reads columns it does not name
		}
		return true
	})
	if bad {
		return nil, errors.New("policy expression reads columns it does not name")
	}
	return names, nil
}

// maskedLeaf finds a condition on a masked column anywhere in f (inside
// AND, OR and NOT too): such a filter must not reach the store.
func maskedLeaf(f gateway.Filter, masked func(string) (string, bool)) (col, std string, ok bool) {
	for _, a := range f.Args {
		if col, std, ok := maskedLeaf(a, masked); ok {
			return col, std, true
		}
	}
	if f.Column == "" {
		return "", "", false
	}
	std, ok = masked(f.Column)
	return f.Column, std, ok
}

func limitReason(d *gateway.TableDecision, orderMasked bool) string {
	switch {
	case d.RowFilter != "":
		return "the policy's row filter applies first, in the gateway"
	case d.AggregateOnly:
		return "the data may only leave as aggregates"
	case orderMasked:
		return "the order is on a masked column"
	}
	return "a filter it relied on is on a masked column"
}

func hasWhen(d *gateway.TableDecision) bool {
	for _, m := range d.Masks {
		if m.When != "" {
			return true
		}
	}
	return false
}

func stdNames(d *catalog.Dataset) []string {
	out := []string{"council", "council_gss"}
	for _, c := range d.Config.Columns {
		out = append(out, c.Name)
	}
	return out
}

// policySelect is the SELECT that gives the analyst only what the decision
// allows: the row filter applied to the real values, masks applied, and only
// the used columns carrying data (other columns NULL, keeping the shape).
// from is a relation whose columns are cols; exactly one of schema (a
// council table) and dataset (a standard dataset) says their types.
func (p *plan) policySelect(from string, cols, used []string, d *gateway.TableDecision, schema *arrow.Schema, dataset *catalog.Dataset) string {
	isUsed := map[string]bool{}
	for _, u := range used {
		isUsed[strings.ToLower(u)] = true
	}
	var items []string
	for _, c := range cols {
		typ := p.typeOf(c, schema, dataset)
		expr := ident(c)
		switch {
		case !isUsed[strings.ToLower(c)] && !(dataset != nil && (c == "council" || c == "council_gss")):
			expr = fmt.Sprintf("CAST(NULL AS %s)", typ)
		default:
			if m, ok := maskFor(d.Masks, c); ok {
				expr = p.maskExpr(ident(c), typ, m)
			}
		}
		items = append(items, fmt.Sprintf("%s AS %s", expr, ident(c)))
	}
	sql := "SELECT " + strings.Join(items, ", ") + " FROM " + from + " AS __policy_rows"
	if d.RowFilter != "" {
		sql += " WHERE (" + d.RowFilter + ")"
	}
	return sql
}

func maskFor(masks map[string]gateway.Mask, col string) (gateway.Mask, bool) {
	for name, m := range masks {
		if strings.EqualFold(name, col) {
			return m, true
		}
	}
	return gateway.Mask{}, false
}

func (p *plan) typeOf(col string, schema *arrow.Schema, dataset *catalog.Dataset) string {
	if dataset != nil {
		if c := dataset.Column(col); c != nil {
			return c.Type
		}
		return "VARCHAR"
	}
	if i := catalog.FieldIndex(schema, col); i >= 0 {
		return catalog.SQLType(schema.Field(i).Type)
	}
	return "VARCHAR"
}

// maskExpr masks x (of SQL type typ). Every mask keeps NULL as NULL; a
// mask with a When condition applies only where the condition holds.
func (p *plan) maskExpr(x, typ string, m gateway.Mask) string {
	masked, keepsType := p.maskValue(x, typ, m)
	masked = fmt.Sprintf("CASE WHEN %s IS NULL THEN NULL ELSE %s END", x, masked)
	if m.When == "" {
		return masked
	}
	orig := x
	if !keepsType {
		orig = fmt.Sprintf("CAST(%s AS VARCHAR)", x)
	}
	return fmt.Sprintf("CASE WHEN (%s) THEN %s ELSE %s END", m.When, masked, orig)
}

// maskValue is the masked value of a non-NULL x, and whether it keeps x's
// type (the others are text).
func (p *plan) maskValue(x, typ string, m gateway.Mask) (string, bool) {
	switch m.Kind {
	case gateway.MaskNull:
		return fmt.Sprintf("CAST(NULL AS %s)", typ), true
	case gateway.MaskRedact:
		v := m.Value
		if v == "" {
			v = "REDACTED"
		}
		return quote(v), false
	case gateway.MaskHash:
		// The key differs per requester, so hashed values cannot be joined
		// across requesters, and the salt never appears in SQL.
		return fmt.Sprintf("sha256(%s || CAST(%s AS VARCHAR))", quote(p.hashKey), x), false
	case gateway.MaskKeepPrefix:
		return fmt.Sprintf("left(CAST(%s AS VARCHAR), %d)", x, m.N), false
	case gateway.MaskPostcodeSector:
		pc := fmt.Sprintf("upper(trim(CAST(%s AS VARCHAR)))", x)
		return fmt.Sprintf("CASE WHEN regexp_matches(%[1]s, '^[A-Z]{1,2}[0-9][0-9A-Z]? *[0-9][A-Z]{2}$') THEN regexp_replace(%[1]s, '^([A-Z]{1,2}[0-9][0-9A-Z]?) *([0-9])[A-Z]{2}$', '\\1 \\2') END", pc), false
	case gateway.MaskTruncateDate:
		return fmt.Sprintf("CAST(date_trunc(%s, %s) AS %s)", quote(m.Unit), x, typ), true
	case gateway.MaskRound:
		return fmt.Sprintf("round(%s, %d)", x, m.N), true
	}
	return "NULL", false // validMask refused it before
}

// hashKeyFor derives the per-requester key of the hash mask.
func hashKeyFor(salt string, r *gateway.Requester) string {
	id := ""
	if r != nil {
		id = r.ID
	}
	sum := sha256.Sum256([]byte(salt + "\x00" + id))
	return hex.EncodeToString(sum[:])
}
