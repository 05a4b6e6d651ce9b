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

in_force(a) if {
	a.status == "active"
	started(a)
	not ended(a)
}

started(a) if substring(a.sharing_schedule.start, 0, 10) <= today

ended(a) if {
	is_string(a.sharing_schedule.end)
	substring(a.sharing_schedule.end, 0, 10) < today
}

# receives(a): the requester is a receiving party of a.
receives(a) if {
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

# discloses(a, t): t's council is a disclosing party of a.
discloses(a, t) if {
	some d in a.parties.disclosing
	d in {"*", t.source, t.gss}
	d != ""
}

purpose_matches(a) if {
	input.purpose != ""
	input.purpose in a.purpose_codes
	input.purpose in requester_purposes
}

# terms(a, t) are a's terms for t's dataset, with their index.
terms(a, t) := {i: ds |
	some i, ds in a.datasets
	ds.dataset == t.dataset
}

columns_denied(ds) := {c | some c in ds.columns_denied}

column_allowed(ds, c) if {
	"*" in ds.columns_allowed
	not c in columns_denied(ds)
}

column_allowed(ds, c) if {
	c in ds.columns_allowed
	not c in columns_denied(ds)
}

covers(ds, t) if {
	every c in t.columns {
		column_allowed(ds, c)
	}
}

valid_terms(ds) if {
	ds.granularity == "record"
	every _, m in object.get(ds, "masks", {}) {
		valid_mask(m)
	}
}

valid_terms(ds) if {
	ds.granularity == "aggregate"
	is_number(ds.min_cell)
	ds.min_cell >= 1
	every _, m in object.get(ds, "masks", {}) {
		valid_mask(m)
	}
}

# views(t) are the agreement terms that give access to t, each as
# [aggregate?, number of masks, row filter?, agreement id, dataset index] so
# that sorting puts the least restrictive first.
views(t) := {[agg, nmasks, filtered, id, i] |
	some id, a in data.agreements
	in_force(a)
	receives(a)
	discloses(a, t)
	purpose_matches(a)
	some i, ds in terms(a, t)
	valid_terms(ds)
	covers(ds, t)
	agg := granularity_rank(ds)
	nmasks := count({c | some c, _ in ds.masks})
	filtered := row_filter_rank(ds)
}

best_view(t) := sort(views(t))[0]

granularity_rank(ds) := 0 if ds.granularity == "record"

else := 1

row_filter_rank(ds) := 1 if row_filter(ds) != ""

else := 0

row_filter(ds) := ds.row_filter if is_string(ds.row_filter)

else := ""

agreement_decision(t, view) := object.union_n([
	{
		"allowed": true,
		"reason": sprintf("allowed by data-sharing agreement %s (%s) for purpose %q", [view[3], a.title, input.purpose]),
		"agreements": [view[3]],
	},
	row_filter_part(ds),
	masks_part(ds),
	aggregate_part(ds),
	row_cap_part(a, ds),
]) if {
	a := data.agreements[view[3]]
	ds := a.datasets[view[4]]
}

row_filter_part(ds) := {"row_filter": row_filter(ds)} if row_filter(ds) != ""

else := {}

masks_part(ds) := {"masks": ms} if {
	ms := {c: mask(m) | some c, m in ds.masks}
	count(ms) > 0
} else := {}

aggregate_part(ds) := {"aggregate_only": true, "min_group_size": ds.min_cell} if ds.granularity == "aggregate"

else := {}

# A dataset's row_cap overrides the agreement's.
row_cap_part(_, ds) := {"row_cap": ds.row_cap} if {
	is_number(ds.row_cap)
	ds.row_cap > 0
} else := {"row_cap": a.row_cap} if {
	is_number(a.row_cap)
	a.row_cap > 0
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
# that does not allow every column the query uses.
column_reason(t) := sprintf(
	"data-sharing agreement %s gives %s access to %s from %s for purpose %q, but not to column(s) %s",
	[id, who, t.dataset, council_name(t), input.purpose, concat(", ", sort(missing))],
) if {
	some id, a in data.agreements
	in_force(a)
	receives(a)
	discloses(a, t)
	purpose_matches(a)
	some _, ds in terms(a, t)
	missing := {c | some c in t.columns; not column_allowed(ds, c)}
	count(missing) > 0
}

# An agreement that would match but is not in force.
lapsed_reason(t) := sprintf(
	"data-sharing agreement %s would give %s access to %s from %s for purpose %q, but it %s",
	[id, who, t.dataset, council_name(t), input.purpose, not_in_force_reason(a)],
) if {
	some id, a in data.agreements
	not in_force(a)
	receives(a)
	discloses(a, t)
	purpose_matches(a)
	count(terms(a, t)) > 0
}

not_in_force_reason(a) := sprintf("is %s, not active", [a.status]) if {
	a.status != "active"
} else := sprintf("does not start until %s", [a.sharing_schedule.start]) if {
	not started(a)
} else := sprintf("expired on %s", [a.sharing_schedule.end]) if {
	ended(a)
} else := "is not in force"
