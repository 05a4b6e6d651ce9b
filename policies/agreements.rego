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

# today is the request's date in UTC, YYYY-MM-DD; agreement dates compare
# with it as strings.
today := substring(input.time, 0, 10)

# Facts about each agreement that do not depend on the table are rules, so
# they are worked out once per decision (and never by passing a whole
# agreement to a function, which OPA would copy and hash on every call).

started_ids contains id if {
	a := data.agreements[id]
	substring(a.sharing_schedule.start, 0, 10) <= today
}

ended_ids contains id if {
	a := data.agreements[id]
	is_string(a.sharing_schedule.end)
	substring(a.sharing_schedule.end, 0, 10) < today
}

# in_force_ids: active and within the sharing schedule.
in_force_ids contains id if {
	a := data.agreements[id]
	a.status == "active"
	id in started_ids
	not id in ended_ids
}

# receiving_ids: the requester is the receiving party.
receiving_ids contains id if {
	a := data.agreements[id]
	orgs := {o | some o in a.parties.receiving.organisations}
	roles := {r | some r in a.parties.receiving.roles}
	count(orgs) + count(roles) > 0
	org_matches(orgs)
	role_matches(roles)
}

org_matches(orgs) if count(orgs) == 0

org_matches(orgs) if input.requester.organisation in orgs

role_matches(roles) if count(roles) == 0

role_matches(roles) if {
	some r in roles
	r in requester_roles
}

# purpose_ids: the declared purpose is one of the agreement's and one of
# the requester's.
purpose_ids contains id if {
	a := data.agreements[id]
	input.purpose != ""
	input.purpose in a.purpose_codes
	input.purpose in requester_purposes
}

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

# discloses(disclosing, t): t's council is among the disclosing parties.
discloses(disclosing, t) if {
	some d in disclosing
	d in {"*", t.source, t.gss}
	d != ""
}

# usable[dataset] are the terms this request may use for dataset: those of
# in-force agreements the requester receives under, for the declared
# purpose, with valid terms, each with what tables are checked against and
# its rank, [aggregate?, number of masks, row filter?, id, index], so that
# sorting puts the least restrictive first.
usable[ds.dataset] contains {
	"id": id,
	"index": i,
	"rank": [granularity_rank(ds.granularity), count({c | some c, _ in ds.masks}), row_filter_rank([id, i]), id, i],
	"disclosing": {d | some d in a.parties.disclosing},
	"all_columns": "*" in ds.columns_allowed,
	"allowed": {c | some c in ds.columns_allowed},
	"denied": {c | some c in ds.columns_denied},
} if {
	some id in in_force_ids
	id in receiving_ids
	id in purpose_ids
	a := data.agreements[id]
	some i, ds in a.datasets
	[id, i] in valid_terms
}

# uncovered are the columns a query uses that terms do not allow.
uncovered(all, allowed, denied, cols) := cols & denied if all

else := (cols - allowed) | (cols & denied)

# views(t) are the usable terms that cover t: its council and every column
# it uses.
views(t) := {u.rank |
	some u in usable[t.dataset]
	discloses(u.disclosing, t)
	count(uncovered(u.all_columns, u.allowed, u.denied, {c | some c in t.columns})) == 0
}

# best_view(t) is [agreement id, dataset index] of the least restrictive
# view.
best_view(t) := [v[3], v[4]] if v := sort(views(t))[0]

granularity_rank("record") := 0

granularity_rank("aggregate") := 1

row_filter_rank(key) := 1 if key in row_filtered

else := 0

# agreement_decision(key) is the decision for the terms at key, [agreement
# id, dataset index]. (Parts are looked up by key rather than passed whole
# agreements, which OPA would copy on every call.)
agreement_decision(key) := object.union_n([
	{
		"allowed": true,
		"reason": sprintf("allowed by data-sharing agreement %s (%s) for purpose %q", [key[0], data.agreements[key[0]].title, input.purpose]),
		"agreements": [key[0]],
	},
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
	[id, who, t.dataset, council_name(t), input.purpose, not_in_force_reason(id, a.status, a.sharing_schedule)],
) |
	a := data.agreements[id]
	not id in in_force_ids
	id in receiving_ids
	id in purpose_ids
	discloses(a.parties.disclosing, t)
	some ds in a.datasets
	ds.dataset == t.dataset
}

not_in_force_reason(id, status, schedule) := sprintf("is %s, not active", [status]) if {
	status != "active"
} else := sprintf("does not start until %s", [schedule.start]) if {
	not id in started_ids
} else := sprintf("expired on %s", [schedule.end]) if {
	id in ended_ids
} else := "is not in force"
