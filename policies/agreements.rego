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
#   terms[purpose code][dataset]  the dataset terms of every agreement that
#                                 lists the purpose code and has a receiving
#                                 party, one object per terms (term_entry)
#   decisions[id][index]          the allowed decision for valid terms, less
#                                 the reason, and the agreement's title
agreement_index := {
	"terms": index_terms,
	"decisions": index_decisions,
}

index_terms[code][ds.dataset] contains term_entry(id, i) if {
	some id, a in data.agreements
	agreement_facts[id]
	some code in a.purpose_codes
	some i, ds in a.datasets
}

index_decisions[id][i] := {"title": data.agreements[id].title, "decision": term_decision([id, i])} if {
	some [id, i] in valid_terms
}

# agreement_facts[id] are what a request is checked against, for agreements
# that name a receiving party: status, schedule (start10/end10, the dates
# compared with the request's; end10 only for a string end), receiving
# organisations and roles, and disclosing councils.
agreement_facts[id] := object.union_n([
	{
		"id": id,
		"status": a.status,
		"schedule": a.sharing_schedule,
		"orgs": orgs,
		"roles": roles,
		"disclosing": {d | some d in a.parties.disclosing},
	},
	start_part(a.sharing_schedule),
	end_part(a.sharing_schedule),
]) if {
	some id, a in data.agreements
	orgs := {o | some o in a.parties.receiving.organisations}
	roles := {r | some r in a.parties.receiving.roles}
	count(orgs) + count(roles) > 0
}

start_part(schedule) := {"start10": substring(schedule.start, 0, 10)} if {
	substring(schedule.start, 0, 10)
} else := {}

end_part(schedule) := {"end10": substring(schedule.end, 0, 10)} if {
	is_string(schedule.end)
} else := {}

# term_entry(id, i) is agreement id's facts plus those of its dataset terms
# i: whether they are valid and, if so, their rank, [aggregate?, number of
# masks, row filter?, id, index], so that sorting puts the least restrictive
# first, and the columns tables are checked against.
term_entry(id, i) := object.union_n([
	agreement_facts[id],
	{
		"index": i,
		"valid": [id, i] in valid_terms,
		"all_columns": "*" in ds.columns_allowed,
		"allowed": {c | some c in ds.columns_allowed},
		"denied": {c | some c in ds.columns_denied},
	},
	rank_part(id, i, ds),
]) if {
	ds := data.agreements[id].datasets[i]
}

rank_part(id, i, ds) := {"rank": [
	granularity_rank(ds.granularity),
	count({c | some c, _ in ds.masks}),
	row_filter_rank([id, i]),
	id, i,
]} if {
	[id, i] in valid_terms
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
# dataset index], but for its reason, which names the request's purpose.
term_decision(key) := object.union_n([
	{"allowed": true, "agreements": [key[0]]},
	row_filter_part(key),
	masks_part(key),
	aggregate_part(key),
	row_cap_part(key),
])

row_filter_part(key) := {"row_filter": data.agreements[key[0]].datasets[key[1]].row_filter} if key in row_filtered

else := {}

masks_part(key) := {"masks": ms} if {
	ms := {c: mask(m) | some c, m in data.agreements[key[0]].datasets[key[1]].masks}
	count(ms) > 0
} else := {}

aggregate_part(key) := {"aggregate_only": true, "min_group_size": ds.min_cell} if {
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

# purpose_terms[dataset] are the terms of agreements whose purpose codes
# contain the declared purpose, when the requester's own registered
# purposes contain it too.
purpose_terms := agreement_index.terms[input.purpose] if {
	input.purpose != ""
	input.purpose in requester_purposes
}

# in_force(e): the agreement is active and within its sharing schedule.
in_force(e) if {
	e.status == "active"
	started(e)
	not ended(e)
}

started(e) if e.start10 <= today

ended(e) if e.end10 < today

# receives(e): the requester is the agreement's receiving party (when it
# lists both organisations and roles, both must match).
receives(e) if {
	org_matches(e.orgs)
	role_matches(e.roles)
}

org_matches(orgs) if count(orgs) == 0

org_matches(orgs) if input.requester.organisation in orgs

role_matches(roles) if count(roles) == 0

role_matches(roles) if {
	some r in roles
	r in requester_roles
}

# discloses(disclosing, t): t's council is among the disclosing parties.
discloses(disclosing, t) if {
	some d in disclosing
	d in {"*", t.source, t.gss}
	d != ""
}

# usable[dataset] are the terms this request may use for dataset: valid
# terms of in-force agreements the requester receives under, for the
# declared purpose.
usable[ds] contains e if {
	some e in purpose_terms[ds]
	e.valid
	in_force(e)
	receives(e)
}

# uncovered are the columns a query uses that terms do not allow.
uncovered(all, allowed, denied, cols) := cols & denied if all

else := (cols - allowed) | (cols & denied)

# views(t) are the ranks of the usable terms that cover t: its council and
# every column it uses.
views(t) := {e.rank |
	some e in usable[t.dataset]
	discloses(e.disclosing, t)
	count(uncovered(e.all_columns, e.allowed, e.denied, {c | some c in t.columns})) == 0
}

# best_view(t) is [agreement id, dataset index] of the least restrictive
# view.
best_view(t) := [v[3], v[4]] if v := sort(views(t))[0]

# agreement_decision(key) is the decision for the terms at key, [agreement
# id, dataset index].
agreement_decision(key) := object.union(d.decision, {"reason": sprintf(
	"allowed by data-sharing agreement %s (%s) for purpose %q",
	[key[0], d.title, input.purpose],
)}) if {
	d := agreement_index.decisions[key[0]][key[1]]
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
	some u in usable[t.dataset]
	discloses(u.disclosing, t)
	missing := uncovered(u.all_columns, u.allowed, u.denied, {c | some c in t.columns})
	count(missing) > 0
}

# An agreement that would match but is not in force (the first by id).
lapsed_reason(t) := sort(lapsed_reasons(t))[0]

lapsed_reasons(t) := {sprintf(
	"data-sharing agreement %s would give %s access to %s from %s for purpose %q, but it %s",
	[e.id, who, t.dataset, council_name(t), input.purpose, not_in_force_reason(e)],
) |
	some e in purpose_terms[t.dataset]
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
