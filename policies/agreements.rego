# Data-sharing agreements (agreements/<id>/agreement.yaml, loaded as
# data.agreements[<id>]) and the access they give.
#
# An agreement gives a requester access to one council table read through a
# standard dataset when all of these hold:
#   - its status is active and the request's date (input.time, UTC) lies
#     within sharing_schedule start..end (both inclusive; no end = open);
#   - its receiving party names the requester's organisation and/or one of
#     the requester's roles (when both are listed, both must match);
#   - its disclosing party lists the table's council (source id or GSS
#     code) or "*";
#   - its purpose_codes contain the purpose the request declared, and the
#     requester's own registered purposes contain it too;
#   - it has terms for the dataset whose columns_allowed (minus
#     columns_denied) cover every column the query uses, with a valid
#     granularity and known mask kinds.
# When several agreements qualify, the least restrictive terms are used
# (record before aggregate, then fewest masks, then no row filter, then the
# agreement id) and that agreement is recorded.
package gateway

# --- The agreement index: everything about the agreements that does not
# depend on the request ---------------------------------------------------
#
# agreement_index reads only data.agreements, never input, so its value is
# the same for every request under one set of agreement files. The gateway
# works it out once per policy load and evaluates every decision with it in
# place (gateway/policy/load.go: `with data.gateway.agreement_index as ...`);
# `opa test` and `with data.agreements as {...}` work it out again for each
# evaluation, from the same rules. The per-request rules below then look
# terms up by purpose code and dataset instead of walking every agreement.
#
#   terms[purpose code][dataset]       the valid dataset terms of every
#                                      active agreement that lists the
#                                      purpose code and has a receiving
#                                      party, least restrictive first, each
#                                      with the decision it gives for the
#                                      purpose code (term_entry)
#   agreements[purpose code][dataset]  those agreements' facts, for every
#                                      agreement with terms for the dataset,
#                                      valid or not (for denial reasons)
agreement_index := {
	"terms": index_terms,
	"agreements": index_agreements,
}

index_terms[code][name] := [term_entry(code, id, i) | some [_, _, _, id, i] in sort(ranks)] if {
	some code, by_dataset in index_ranks
	some name, ranks in by_dataset
}

# index_ranks[code][dataset] are the ranks of valid terms, [aggregate?,
# number of masks, row filter?, id, index], so that sorting puts the least
# restrictive first.
index_ranks[code][ds.dataset] contains [
	granularity_rank(ds.granularity),
	count({c | some c, _ in ds.masks}),
	row_filter_rank([id, i]),
	id, i,
] if {
	some id, a in data.agreements
	agreement_facts[id]
	some code in a.purpose_codes
	a.status == "active"
	some i, ds in a.datasets
	[id, i] in valid_terms
}

index_agreements[code][ds.dataset] contains agreement_facts[id] if {
	some id, a in data.agreements
	agreement_facts[id]
	some code in a.purpose_codes
	some ds in a.datasets
}

# agreement_facts[id] are what a request is checked against, for agreements
# that name a receiving party: status, schedule (start10/end10, the dates
# compared with the request's; end10 only for a string end), receiving
# organisations and roles (and whether one must match: 1 when any are
# listed, else 0), and disclosing councils (source ids, GSS codes or "*").
agreement_facts[id] := object.union_n([
	{
		"id": id,
		"status": a.status,
		"schedule": a.sharing_schedule,
		"orgs": orgs,
		"orgs_needed": min([count(orgs), 1]),
		"roles": roles,
		"roles_needed": min([count(roles), 1]),
		"disclosing": {d | some d in a.parties.disclosing; d != ""},
	},
	start_part(a.sharing_schedule),
	end_part(a.sharing_schedule),
]) if {
	some id, a in data.agreements
	orgs := {o | some o in a.parties.receiving.organisations}
	roles := {r | some r in a.parties.receiving.roles}
	count(orgs) + count(roles) > 0
}

start_part(schedule) := {"start10": s} if {
	s := substring(schedule.start, 0, 10)
} else := {}

end_part(schedule) := {"end10": substring(schedule.end, 0, 10)} if {
	is_string(schedule.end)
} else := {}

# term_entry(code, id, i) is agreement id's facts plus the index of its
# dataset terms i, the columns tables are checked against (with
# columns_allowed ["*"] every column but the denied ones, else the permitted
# ones: columns_allowed minus columns_denied), and the decision the terms
# give for purpose code.
term_entry(code, id, i) := object.union_n([
	agreement_facts[id],
	{
		"index": i,
		"all_columns": "*" in ds.columns_allowed,
		"permitted": {c | some c in ds.columns_allowed} - denied,
		"denied": denied,
	},
	decision_part(code, id, i),
]) if {
	ds := data.agreements[id].datasets[i]
	denied := {c | some c in ds.columns_denied}
}

decision_part(code, id, i) := {"decision": object.union(term_decision([id, i]), {"reason": sprintf(
	"allowed by data-sharing agreement %s (%s) for purpose %q",
	[id, title, code],
)})} if {
	title := data.agreements[id].title
} else := {}

# valid_terms: [id, index] of dataset terms with a known granularity (and a
# minimum cell for aggregates) and only valid masks.
valid_terms contains [id, i] if {
	some [id, i] in good_granularity
	not [id, i] in invalid_masks
}

good_granularity contains [id, i] if {
	data.agreements[id].datasets[i].granularity == "record"
}

good_granularity contains [id, i] if {
	ds := data.agreements[id].datasets[i]
	ds.granularity == "aggregate"
	is_number(ds.min_cell)
	ds.min_cell >= 1
}

invalid_masks contains [id, i] if {
	m := data.agreements[id].datasets[i].masks[_]
	not valid_mask(m)
}

# row_filtered: [id, index] of dataset terms with a row filter.
row_filtered contains [id, i] if {
	f := data.agreements[id].datasets[i].row_filter
	is_string(f)
	f != ""
}

granularity_rank("record") := 0

granularity_rank("aggregate") := 1

row_filter_rank(key) := 1 if key in row_filtered

else := 0

# term_decision(key) is the decision for the terms at key, [agreement id,
# dataset index], but for its reason, which names the purpose.
term_decision(key) := object.union_n([
	{"allowed": true, "agreements": [key[0]]},
	row_filter_part(key),
	masks_part(key),
	aggregate_part(key),
	row_cap_part(key),
	coverage_part(key),
])

# Terms that ask for every council: a query that would leave one out is
# refused rather than answered over fewer councils.
coverage_part(key) := {"coverage": "all"} if {
	data.agreements[key[0]].datasets[key[1]].coverage == "all"
} else := {}

row_filter_part(key) := {"row_filter": data.agreements[key[0]].datasets[key[1]].row_filter} if key in row_filtered

else := {}

masks_part(key) := {"masks": ms} if {
	ms := {c: mask(m) | some c, m in data.agreements[key[0]].datasets[key[1]].masks}
	count(ms) > 0
} else := {}

# Aggregate-only terms name the dimensions (group keys) and measures
# (aggregated columns) the engine allows; none listed means none beyond
# council and count(*).
aggregate_part(key) := {
	"aggregate_only": true,
	"min_group_size": ds.min_cell,
	"dimensions": object.get(ds, "dimensions", []),
	"measures": object.get(ds, "measures", []),
} if {
	ds := data.agreements[key[0]].datasets[key[1]]
	ds.granularity == "aggregate"
} else := {}

# A dataset's row_cap overrides the agreement's.
row_cap_part(key) := {"row_cap": cap} if {
	cap := data.agreements[key[0]].datasets[key[1]].row_cap
	is_number(cap)
	cap > 0
} else := {"row_cap": cap} if {
	cap := data.agreements[key[0]].row_cap
	is_number(cap)
	cap > 0
} else := {}

# --- Per request ----------------------------------------------------------

# today is the request's date in UTC, YYYY-MM-DD; agreement dates compare
# with it as strings.
today := substring(input.time, 0, 10)

# purpose_terms[dataset] are the valid terms (least restrictive first) and
# purpose_agreements[dataset] the agreements of the declared purpose, when
# the requester's own registered purposes contain it too.
purpose_terms := agreement_index.terms[input.purpose] if declared_purpose

purpose_agreements := agreement_index.agreements[input.purpose] if declared_purpose

declared_purpose if {
	input.purpose != ""
	input.purpose in input.requester.purposes
}

# in_force(e): the agreement is active and within its sharing schedule.
in_force(e) if {
	e.status == "active"
	started(e)
	not ended(e)
}

started(e) if e.start10 <= today

ended(e) if e.end10 < today

# receives(e): the requester is the agreement's receiving party: its
# organisation is listed, if any are, and one of its roles is, if any are.
receives(e) if {
	count(e.orgs & requester_organisations) >= e.orgs_needed
	count(e.roles & requester_roles) >= e.roles_needed
}

requester_organisations := {o | o := input.requester.organisation}

# council_keys(t) name t's council as disclosing parties may: its source id,
# its GSS code, or "*" for every council. (Disclosing parties are never "".)
council_keys(t) := {"*", t.source, t.gss}

# discloses(disclosing, t): t's council is among the disclosing parties.
discloses(disclosing, t) if count(council_keys(t) & disclosing) > 0

# usable[dataset] are the terms this request may use for dataset, least
# restrictive first: valid terms of active agreements, in their sharing
# schedule today, that the requester receives under, for the declared
# purpose.
usable[ds] := [e |
	some e in terms
	started(e)
	not ended(e)
	receives(e)
] if {
	some ds, terms in purpose_terms
}

# uncovered(e, cols) are the columns a query uses that terms e do not allow.
uncovered(e, cols) := cols & e.denied if e.all_columns

else := cols - e.permitted

# covering(dataset, columns) are the usable terms for dataset that allow
# every column in columns, least restrictive first. (A function of the
# dataset and columns only, so OPA works it out once for all the councils'
# tables of a query over a standard dataset.)
covering(dataset, columns) := [e |
	some e in usable[dataset]
	count(uncovered(e, cols)) == 0
] if {
	cols := {c | some c in columns}
}

# best_view(t) is the least restrictive usable terms that cover t: its
# council and every column it uses.
best_view(t) := [e |
	some e in covering(t.dataset, t.columns)
	count(keys & e.disclosing) > 0
][0] if {
	keys := {"*", t.source, t.gss}
}

# Reasons for a denial, most specific first. They speak only of the
# requester's own registered purposes and of agreements the requester is a
# receiving party of, never of the data.
no_agreement_reason(t) := sprintf(
	"no purpose declared; declare one of your purposes (%s) with the purpose field or the X-Gateway-Purpose header",
	[concat(", ", sort(requester_purposes))],
) if {
	not input.purpose
} else := sprintf(
	"no purpose declared; declare one of your purposes (%s) with the purpose field or the X-Gateway-Purpose header",
	[concat(", ", sort(requester_purposes))],
) if {
	input.purpose == ""
} else := sprintf(
	"purpose %q is not among the purposes registered for %s (%s)",
	[input.purpose, input.requester.id, concat(", ", sort(requester_purposes))],
) if {
	not input.purpose in requester_purposes
} else := column_reason(t) if {
	column_reason(t)
} else := lapsed_reason(t) if {
	lapsed_reason(t)
} else := sprintf(
	"no active data-sharing agreement gives %s access to %s from %s for purpose %q",
	[who, table_name(t), council_name(t), input.purpose],
)

# An in-force agreement for this requester, council, purpose and dataset
# that does not allow every column the query uses (the first by id).
column_reason(t) := sort(column_reasons(t))[0]

column_reasons(t) := {sprintf(
	"data-sharing agreement %s gives %s access to %s from %s for purpose %q, but not to column(s) %s",
	[u.id, who, t.dataset, council_name(t), input.purpose, concat(", ", sort(missing))],
) |
	cols := {c | some c in t.columns}
	keys := council_keys(t)
	some u in usable[t.dataset]
	count(keys & u.disclosing) > 0
	missing := uncovered(u, cols)
	count(missing) > 0
}

# An agreement that would match but is not in force (the first by id).
lapsed_reason(t) := sort(lapsed_reasons(t))[0]

lapsed_reasons(t) := {sprintf(
	"data-sharing agreement %s would give %s access to %s from %s for purpose %q, but it %s",
	[e.id, who, t.dataset, council_name(t), input.purpose, not_in_force_reason(e)],
) |
	some e in purpose_agreements[t.dataset]
	not in_force(e)
	receives(e)
	discloses(e.disclosing, t)
}

not_in_force_reason(e) := sprintf("is %s, not active", [e.status]) if {
	e.status != "active"
} else := sprintf("does not start until %s", [e.schedule.start]) if {
	not started(e)
} else := sprintf("expired on %s", [e.schedule.end]) if {
	ended(e)
} else := "is not in force"
