# The four demo personas (deploy/demo/gateway.yaml) against the demo
# agreements in agreements/.
package gateway_test

# --- demo-public -------------------------------------------------------------

test_public_reads_every_councils_planning_in_full if {
	ds := decide(request(public, "transparency", [planning(src, ["applicant_name", "postcode"]) | some src, _ in councils]))
	count(ds) == 6
	every d in ds {
		d.allowed
		d.agreements == ["open-data-transparency"]
		not d.masks
		not d.row_filter
		not d.aggregate_only
	}
}

test_public_reads_spend_only_as_aggregates_of_ten if {
	ds := decide(request(public, "transparency", [spend(src, spend_cols) | some src, _ in councils]))
	every d in ds {
		d.allowed
		d.aggregate_only == true
		d.min_group_size == 10
		"payment_date:month" in d.dimensions
		not "beneficiary_name" in d.dimensions
		not "transaction_id" in d.dimensions
		d.measures == ["amount", "irrecoverable_vat", "gross_amount"]
		"period_start:month" in d.dimensions
		not "period_start" in d.dimensions
		d.agreements == ["open-data-transparency"]
	}
}

test_public_without_purpose_is_denied if {
	d := one(public, "", planning("fife", ["reference"]))
	not d.allowed
	contains(d.reason, "no purpose declared")
	contains(d.reason, "transparency")
	d.coverage == "all" # about the request: refuses the query, never leaves the council out
}

test_public_cannot_read_council_tables_directly if {
	d := one(public, "transparency", direct("glasgow", "planning", ["council_reference"]))
	not d.allowed
	contains(d.reason, "only Glasgow City Council's own staff may read its table planning directly")
}

test_public_cannot_read_the_audit_log if {
	d := one(public, "transparency", audit_table)
	not d.allowed
	d.reason == "the audit log (gateway.audit) is readable only by the governance role"
}

# --- demo-analyst ------------------------------------------------------------

test_analyst_reads_own_council_in_full_for_any_purpose if {
	every purpose in ["service-planning", "research", "", "anything"] {
		ds := decide(request(analyst, purpose, [
			spend("edinburgh", spend_cols),
			planning("edinburgh", planning_cols),
			direct("edinburgh", "payments_over_500", ["Supplier name", "Net amount"]),
		]))
		count(ds) == 3
		every d in ds {
			own_council_in_full(d)
		}
	}
}

own_council_in_full(d) if {
	d.allowed
	d.agreements == ["own-council"]
	not d.masks
	not d.row_filter
	not d.aggregate_only
	not d.row_cap
}

test_analyst_reads_other_councils_spend_with_individuals_redacted if {
	every src in ["glasgow", "stirling", "fife", "highland", "dundee"] {
		every purpose in ["service-planning", "research"] {
			benchmarking_terms(one(analyst, purpose, spend(src, spend_cols)))
		}
	}
}

benchmarking_terms(d) if {
	d.allowed
	d.agreements == ["edinburgh-spend-benchmarking"]
	d.masks == {"beneficiary_name": {
		"kind": "redact",
		"value": "[individual]",
		"when": "coalesce(beneficiary_type, 'individual') NOT IN ('company', 'charity', 'public_body')",
	}}
	d.row_cap == 100000
	not d.aggregate_only
}

test_analyst_reads_other_councils_planning_with_applicants_hashed if {
	d := one(analyst, "research", planning("highland", planning_cols))
	d.allowed
	d.agreements == ["edinburgh-planning-research"]
	d.masks == {"applicant_name": {"kind": "hash"}}
}

test_analyst_purpose_not_registered_is_denied if {
	d := one(analyst, "transparency", spend("fife", spend_cols))
	not d.allowed
	d.reason == "purpose \"transparency\" is not among the purposes registered for analyst@edinburgh (research, service-planning)"
}

test_analyst_without_purpose_is_denied_other_councils if {
	d := one(analyst, "", spend("fife", spend_cols))
	not d.allowed
	contains(d.reason, "no purpose declared")
}

test_analyst_cannot_read_other_councils_tables_directly if {
	d := one(analyst, "research", direct("fife", "payments", ["Supplier Name"]))
	not d.allowed
	contains(d.reason, "only Fife Council's own staff")
}

test_analyst_cannot_read_the_audit_log if {
	not one(analyst, "research", audit_table).allowed
}

# --- demo-partner ------------------------------------------------------------

test_partner_reads_edinburgh_planning_under_its_agreement if {
	d := one(partner, "health-and-social-care", planning("edinburgh", planning_cols))
	d.allowed
	d.agreements == ["nhs-lothian-planning-health"]
	d.masks == {
		"postcode": {"kind": "postcode_sector"},
		"received_date": {"kind": "truncate_date", "unit": "month"},
	}
	d.row_filter == "application_type IN ('full', 'outline', 'reserved-matters')"
	not d.aggregate_only
}

test_partner_denied_columns_the_agreement_does_not_name if {
	every col in ["applicant_name", "address_text", "responses_for"] {
		d := one(partner, "health-and-social-care", planning("edinburgh", ["reference", col]))
		not d.allowed
		endswith(d.reason, sprintf("but not to column(s) %s", [col]))
	}
}

test_partner_denied_other_councils if {
	every src in ["glasgow", "stirling", "fife", "highland", "dundee"] {
		d := one(partner, "health-and-social-care", planning(src, ["reference"]))
		not d.allowed
		d.reason == sprintf("no active data-sharing agreement gives NHS Lothian (partner@nhs-lothian) access to planning_applications from %s for purpose \"health-and-social-care\"", [councils[src].council])
	}
}

test_partner_denied_for_another_purpose if {
	d := one(partner, "research", planning("edinburgh", ["reference"]))
	not d.allowed
	contains(d.reason, "purpose \"research\" is not among the purposes registered for partner@nhs-lothian")
}

test_partner_denied_for_a_purpose_it_holds_but_the_agreement_lacks if {
	p := object.union(partner, {"purposes": ["health-and-social-care", "research"]})
	d := one(p, "research", planning("edinburgh", ["reference"]))
	not d.allowed
	startswith(d.reason, "no active data-sharing agreement gives NHS Lothian")
}

test_partner_denied_without_purpose if {
	d := one(partner, "", planning("edinburgh", ["reference"]))
	not d.allowed
	d.reason == "no purpose declared; declare one of your purposes (health-and-social-care) with the purpose field or the X-Gateway-Purpose header"
}

test_partner_spend_agreement_has_expired if {
	d := one(partner, "health-and-social-care", spend("edinburgh", ["amount"]))
	not d.allowed
	endswith(d.reason, "but it expired on 2025-03-31")
	not d.agreements
}

test_partner_spend_was_allowed_before_expiry if {
	doc := object.union(request(partner, "health-and-social-care", [spend("edinburgh", ["amount"])]), {"time": "2025-03-31T23:59:59Z"})
	d := decide(doc)[0]
	d.allowed
	d.agreements == ["nhs-lothian-spend-review"]
	d.masks.amount == {"kind": "round", "n": -2}
}

test_partner_cannot_read_edinburgh_tables_directly if {
	d := one(partner, "health-and-social-care", direct("edinburgh", "planning_applications", ["CaseReference"]))
	not d.allowed
}

# --- demo-governance ---------------------------------------------------------

test_governance_reads_the_audit_log if {
	d := one(governance, "audit", audit_table)
	d.allowed
	d.agreements == ["audit-governance"]
	not d.masks
}

test_governance_reads_no_council_data if {
	tables := [
		spend("edinburgh", ["amount"]),
		direct("edinburgh", "payments_over_500", ["Net amount"]),
		planning("edinburgh", ["reference"]),
		spend("fife", ["amount"]),
		planning("glasgow", ["reference"]),
	]
	every purpose in ["audit", ""] {
		ds := decide(request(governance, purpose, tables))
		count(ds) == 5
		every d in ds {
			d.allowed == false
		}
	}
}

test_governance_own_council_reason if {
	d := one(governance, "audit", spend("edinburgh", ["amount"]))
	startswith(d.reason, "The City of Edinburgh Council's own data is open to its staff roles (analyst, officer), not to governance@edinburgh")
}

governance_catalog_tables := [
	spend("edinburgh", []),
	direct("edinburgh", "payments_over_500", []),
	planning("fife", []),
	spend("glasgow", []),
	direct("highland", "spend", []),
	audit_table,
]

test_governance_sees_the_catalog if {
	doc := object.union(request(governance, "", governance_catalog_tables), {"action": "catalog"})
	ds := decide(doc)
	count(ds) == count(governance_catalog_tables)
	every d in ds {
		d == {
			"allowed": true,
			"reason": "the governance role may see the catalog (metadata only)",
			"agreements": ["governance-catalog"],
		}
	}
}

test_governance_catalog_is_not_query_or_explain if {
	every action in ["query", "explain"] {
		every purpose in ["audit", ""] {
			doc := object.union(request(governance, purpose, governance_catalog_tables), {"action": action})
			ds := decide(doc)
			[d.allowed | some d in ds] == [false, false, false, false, false, true]
			every d in ds {
				not "governance-catalog" in object.get(d, "agreements", [])
			}
			startswith(ds[0].reason, "The City of Edinburgh Council's own data is open to its staff roles")
		}
	}
}

test_catalog_is_for_the_governance_role_only if {
	# the same tables, listed by the other personas: decided as their queries
	every who in [analyst, partner, public] {
		doc := object.union(request(who, who.purposes[0], governance_catalog_tables), {"action": "catalog"})
		ds := decide(doc)
		ds == decide(request(who, who.purposes[0], governance_catalog_tables))
		every d in ds {
			not "governance-catalog" in object.get(d, "agreements", [])
		}
	}
}
