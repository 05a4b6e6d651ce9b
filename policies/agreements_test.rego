# How agreements give access, on fixture agreements (with data.agreements as
# ...): status, dates, parties, purposes, columns, granularity, row caps and
# the choice between several agreements.
package gateway_test

# fixture is an in-force agreement giving NHS Lothian's partners Fife's
# spend for health-and-social-care; tests change one part at a time.
fixture := {
	"id": "fx",
	"version": 1,
	"status": "active",
	"title": "Fixture",
	"parties": {"disclosing": ["fife"], "receiving": {"organisations": ["NHS Lothian"], "roles": ["partner"]}},
	"purpose_codes": ["health-and-social-care"],
	"datasets": [{"dataset": "spend_over_500", "columns_allowed": ["payment_date", "amount"], "granularity": "record"}],
	"sharing_schedule": {"start": "2025-04-01", "end": "2026-11-27"},
}

# patched(patch) is fixture with patch's top-level fields replacing its own.
patched(patch) := object.union(object.remove(fixture, object.keys(patch)), patch)

with_fixture(patch, t) := d if {
	d := one(partner, "health-and-social-care", t) with data.agreements as {"fx": patched(patch)}
}

fife_spend := spend("fife", ["payment_date", "amount"])

test_fixture_allows if {
	d := with_fixture({}, fife_spend)
	d.allowed
	d.agreements == ["fx"]
	d.reason == "allowed by data-sharing agreement fx (Fixture) for purpose \"health-and-social-care\""
}

test_status_must_be_active if {
	every status in ["draft", "suspended", "terminated"] {
		d := with_fixture({"status": status}, fife_spend)
		not d.allowed
		endswith(d.reason, sprintf("but it is %s, not active", [status]))
	}
}

test_end_date_is_inclusive_and_expiry_denies if {
	with_fixture({}, fife_spend).allowed # now is 2026-11-27, the end date
	d := with_fixture({"sharing_schedule": {"start": "2025-04-01", "end": "2026-11-26"}}, fife_spend)
	not d.allowed
	endswith(d.reason, "but it expired on 2026-11-26")
}

test_not_yet_started_denies if {
	d := with_fixture({"sharing_schedule": {"start": "2026-11-28"}}, fife_spend)
	not d.allowed
	endswith(d.reason, "but it does not start until 2026-11-28")
}

test_no_end_date_is_open_ended if {
	with_fixture({"sharing_schedule": {"start": "2020-01-01"}}, fife_spend).allowed
}

test_missing_or_bad_time_denies if {
	every time in ["", "yesterday"] {
		doc := object.union(request(partner, "health-and-social-care", [fife_spend]), {"time": time})
		ds := decide(doc) with data.agreements as {"fx": fixture}
		not ds[0].allowed
	}
}

test_disclosing_by_source_gss_or_star if {
	every disclosing in [["fife"], ["S12000047"], ["*"], ["glasgow", "fife"]] {
		with_fixture({"parties": {"disclosing": disclosing, "receiving": fixture.parties.receiving}}, fife_spend).allowed
	}
	not with_fixture({"parties": {"disclosing": ["glasgow"], "receiving": fixture.parties.receiving}}, fife_spend).allowed
}

test_receiving_by_organisation_or_role if {
	every receiving in [{"organisations": ["NHS Lothian"]}, {"roles": ["partner"]}, {"organisations": ["NHS Lothian"], "roles": ["partner", "x"]}] {
		with_fixture({"parties": {"disclosing": ["fife"], "receiving": receiving}}, fife_spend).allowed
	}
	every receiving in [{}, {"organisations": ["NHS Fife"]}, {"roles": ["analyst"]}, {"organisations": ["NHS Lothian"], "roles": ["analyst"]}] {
		not with_fixture({"parties": {"disclosing": ["fife"], "receiving": receiving}}, fife_spend).allowed
	}
}

test_purpose_must_be_in_agreement_and_requester if {
	not with_fixture({"purpose_codes": ["research"]}, fife_spend).allowed

	# the agreement allows research, but the partner's own purposes do not
	d := one(partner, "research", fife_spend) with data.agreements as {"fx": patched({"purpose_codes": ["research"]})}
	not d.allowed
	contains(d.reason, "is not among the purposes registered for partner@nhs-lothian")
}

test_dataset_must_be_covered if {
	d := with_fixture({}, planning("fife", ["reference"]))
	not d.allowed
	startswith(d.reason, "no active data-sharing agreement gives NHS Lothian (partner@nhs-lothian) access to planning_applications from Fife Council")
}

test_every_used_column_must_be_allowed if {
	d := with_fixture({}, spend("fife", ["amount", "beneficiary_name", "purpose"]))
	not d.allowed
	endswith(d.reason, "but not to column(s) beneficiary_name, purpose")
}

test_query_using_no_columns_is_covered if {
	with_fixture({}, spend("fife", [])).allowed
}

test_star_columns_and_columns_denied if {
	star := {"datasets": [{"dataset": "spend_over_500", "columns_allowed": ["*"], "columns_denied": ["beneficiary_name"], "granularity": "record"}]}
	with_fixture(star, spend("fife", ["amount", "purpose"])).allowed
	d := with_fixture(star, spend("fife", ["amount", "beneficiary_name"]))
	not d.allowed
	endswith(d.reason, "but not to column(s) beneficiary_name")
}

test_aggregate_terms if {
	agg := {"datasets": [{"dataset": "spend_over_500", "columns_allowed": ["*"], "granularity": "aggregate", "min_cell": 5}]}
	d := with_fixture(agg, fife_spend)
	d.allowed
	d.aggregate_only == true
	d.min_group_size == 5
}

test_aggregate_without_min_cell_denies if {
	every ds in [
		{"dataset": "spend_over_500", "columns_allowed": ["*"], "granularity": "aggregate"},
		{"dataset": "spend_over_500", "columns_allowed": ["*"], "granularity": "aggregate", "min_cell": 0},
		{"dataset": "spend_over_500", "columns_allowed": ["*"], "granularity": "aggregate", "min_cell": "10"},
		{"dataset": "spend_over_500", "columns_allowed": ["*"]},
		{"dataset": "spend_over_500", "columns_allowed": ["*"], "granularity": "rows"},
	] {
		not with_fixture({"datasets": [ds]}, fife_spend).allowed
	}
}

test_row_filter_and_row_caps if {
	d := with_fixture({"row_cap": 500, "datasets": [{"dataset": "spend_over_500", "columns_allowed": ["*"], "granularity": "record", "row_filter": "amount > 0"}]}, fife_spend)
	d.row_filter == "amount > 0"
	d.row_cap == 500

	# a dataset's row_cap overrides the agreement's
	e := with_fixture({"row_cap": 500, "datasets": [{"dataset": "spend_over_500", "columns_allowed": ["*"], "granularity": "record", "row_cap": 20}]}, fife_spend)
	e.row_cap == 20
	not e.row_filter
}

test_coverage_all_travels_with_the_terms if {
	d := with_fixture({"datasets": [{"dataset": "spend_over_500", "columns_allowed": ["*"], "granularity": "record", "coverage": "all"}]}, fife_spend)
	d.allowed
	d.coverage == "all"

	# absent (or "available"): the answer may leave out councils it cannot read
	e := with_fixture({"datasets": [{"dataset": "spend_over_500", "columns_allowed": ["*"], "granularity": "record", "coverage": "available"}]}, fife_spend)
	e.allowed
	not e.coverage
}

test_least_restrictive_agreement_is_used_and_recorded if {
	cols := ["payment_date", "amount"]
	aggregate := patched({"datasets": [{"dataset": "spend_over_500", "columns_allowed": ["*"], "granularity": "aggregate", "min_cell": 10}]})
	masked := patched({"datasets": [{"dataset": "spend_over_500", "columns_allowed": cols, "granularity": "record", "masks": {"amount": {"kind": "round", "n": 0}}}]})
	filtered := patched({"datasets": [{"dataset": "spend_over_500", "columns_allowed": cols, "granularity": "record", "row_filter": "amount > 0"}]})
	unmasked := patched({"datasets": [{"dataset": "spend_over_500", "columns_allowed": cols, "granularity": "record"}]})
	agreements := {"a-aggregate": aggregate, "b-masked": masked, "c-filtered": filtered}
	d := one(partner, "health-and-social-care", fife_spend) with data.agreements as agreements
	d.agreements == ["c-filtered"] # one row filter beats one mask
	d.row_filter == "amount > 0"
	not d.masks
	not d.aggregate_only

	all := object.union(agreements, {"d-unmasked": unmasked})
	u := one(partner, "health-and-social-care", fife_spend) with data.agreements as all
	u.agreements == ["d-unmasked"]
	object.keys(u) == {"allowed", "reason", "agreements"}

	# a column only the aggregate agreement allows selects it
	e := one(partner, "health-and-social-care", spend("fife", ["purpose"])) with data.agreements as agreements
	e.agreements == ["a-aggregate"]
	e.aggregate_only
}
