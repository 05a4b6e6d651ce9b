# The general rules: deny by default, one decision per table in input order,
# the audit table, direct reads, unknown requesters and actions.
package gateway_test

test_no_agreements_denies_everyone_but_own_staff if {
	tables := [spend("fife", ["amount"]), planning("glasgow", ["reference"]), planning("edinburgh", ["reference"])]
	every who in [public, partner] {
		ds := decide(request(who, who.purposes[0], tables)) with data.agreements as {}
		count(ds) == 3
		every d in ds {
			d.allowed == false
			startswith(d.reason, "no active data-sharing agreement gives")
		}
	}
	own := decide(request(analyst, "research", tables)) with data.agreements as {}
	[d.allowed | some d in own] == [false, false, true]
}

test_denial_is_only_allowed_false_and_reason if {
	d := one(public, "transparency", spend("fife", ["amount"])) with data.agreements as {}
	object.keys(d) == {"allowed", "reason"}
}

test_decisions_follow_input_order if {
	tables := [
		planning("edinburgh", ["reference"]), # allowed (agreement)
		audit_table, # denied
		spend("edinburgh", ["amount"]), # denied (expired)
		planning("fife", ["reference"]), # denied (not a disclosing party)
		planning("edinburgh", ["reference", "applicant_name"]), # denied (column)
		planning("edinburgh", ["ward"]), # allowed
	]
	ds := decide(request(partner, "health-and-social-care", tables))
	[d.allowed | some d in ds] == [true, false, false, false, false, true]
	contains(ds[2].reason, "expired")
	contains(ds[4].reason, "applicant_name")
}

test_no_tables_gives_empty_decision if {
	decide(request(public, "transparency", [])) == []
}

test_unknown_organisation_is_denied if {
	acme := {"id": "someone@acme", "organisation": "Acme Data Ltd", "roles": ["partner"], "purposes": ["health-and-social-care"]}
	ds := decide(request(acme, "health-and-social-care", [planning("edinburgh", ["reference"]), spend("fife", ["amount"])]))
	every d in ds {
		d.allowed == false
		startswith(d.reason, "no active data-sharing agreement gives Acme Data Ltd (someone@acme) access to")
	}
}

test_requester_without_roles_or_purposes_is_denied if {
	nobody := {"id": "nobody", "organisation": "", "roles": null, "purposes": null}
	ds := decide(request(nobody, "transparency", [planning("fife", ["reference"]), audit_table, direct("fife", "payments", ["Net"])]))
	every d in ds {
		d.allowed == false
	}
	ds[0].reason == "purpose \"transparency\" is not among the purposes registered for nobody ()"
}

test_organisation_match_needs_the_role_too if {
	# NHS Lothian staff without the partner role get nothing from the
	# agreement that names both the organisation and the role.
	p := object.union(partner, {"roles": ["clinician"]})
	not one(p, "health-and-social-care", planning("edinburgh", ["reference"])).allowed
}

test_unknown_action_is_denied if {
	doc := object.union(request(analyst, "research", [planning("edinburgh", ["reference"])]), {"action": "delete"})
	d := decide(doc)[0]
	not d.allowed
	d.reason == "action \"delete\" is not one the policy knows; denied"
}

test_explain_and_catalog_decide_like_query if {
	every action in ["explain", "catalog"] {
		doc := object.union(request(partner, "health-and-social-care", [planning("edinburgh", ["reference"])]), {"action": action})
		decide(doc)[0].agreements == ["nhs-lothian-planning-health"]
	}
}

test_direct_reads_only_for_own_staff if {
	own := one(analyst, "", direct("edinburgh", "planning_applications", ["ApplicantName"]))
	own.allowed
	own.agreements == ["own-council"]
	every who in [public, partner] {
		d := one(who, who.purposes[0], direct("edinburgh", "planning_applications", ["CaseReference"]))
		not d.allowed
		d.reason == "only The City of Edinburgh Council's own staff may read its table planning_applications directly; others read the standard datasets (std.*) under a data-sharing agreement"
	}
}

test_direct_reads_denied_even_with_a_matching_agreement if {
	# open-data-transparency covers every council's planning_applications,
	# but only through std.planning_applications.
	not one(public, "transparency", direct("stirling", "planning", ["casereference"])).allowed
}

test_audit_table_only_for_governance if {
	one(governance, "", audit_table).allowed
	every who in [analyst, partner, public] {
		not one(who, who.purposes[0], audit_table).allowed
	}
}

test_other_gateway_tables_are_denied if {
	t := object.union(audit_table, {"table": "secrets"})
	d := one(governance, "audit", t)
	not d.allowed
	d.reason == "gateway.secrets is not a table the policy allows"
}

test_reasons_do_not_mention_rows if {
	ds := decide(request(partner, "health-and-social-care", [spend("fife", ["amount"]), planning("dundee", ["reference"])]))
	every d in ds {
		not contains(d.reason, "row")
	}
}

# Data-quality reports: the governance role for every council, a council's
# own staff for theirs, nobody else (not even through an agreement).
quality_as(who) := decide(object.union(request(who, who.purposes[0], [spend("edinburgh", []), spend("fife", [])]), {"action": "quality"}))

test_quality_reports if {
	every d in quality_as(governance) {
		d.allowed
	}
	[d.allowed | some d in quality_as(analyst)] == [true, false]
	quality_as(analyst)[1].reason == "data-quality reports are for the governance role, and for a council's own staff about their council"
	every who in [partner, public] {
		every d in quality_as(who) {
			not d.allowed
		}
	}
}

# The data-sharing agreements themselves: the governance role only.
agreements_as(who) := decide(object.union(request(who, who.purposes[0], [{"source": "gateway", "council": "", "gss": "", "table": "agreements", "dataset": "", "columns": []}]), {"action": "agreements"}))

test_agreements_are_for_governance if {
	agreements_as(governance)[0].allowed
	every who in [analyst, partner, public] {
		d := agreements_as(who)[0]
		not d.allowed
		d.reason == "the data-sharing agreements are shown to the governance role only"
	}
}

# Verifying the audit chain is reading the audit log: the governance role.
verify_as(who) := decide(object.union(request(who, who.purposes[0], [{"source": "gateway", "council": "", "gss": "", "table": "audit", "dataset": "", "columns": []}]), {"action": "verify"}))

test_verifying_the_audit_chain_is_for_governance if {
	verify_as(governance)[0].allowed
	every who in [analyst, partner, public] {
		not verify_as(who)[0].allowed
	}
}

# Dry runs as another requester: the governance role only.
dry_run_as(who) := decide(object.union(request(who, who.purposes[0], [{"source": "gateway", "council": "", "gss": "", "table": "policy", "dataset": "", "columns": []}]), {"action": "dry_run"}))

test_dry_runs_are_for_governance if {
	dry_run_as(governance)[0].allowed
	every who in [analyst, partner, public] {
		d := dry_run_as(who)[0]
		not d.allowed
		d.reason == "dry runs as another requester are for the governance role only"
	}
}

# Every running query: the governance and admin roles; the others their own.
queries_as(who) := decide(object.union(request(who, who.purposes[0], [{"source": "gateway", "council": "", "gss": "", "table": "queries", "dataset": "", "columns": []}]), {"action": "queries"}))

test_every_running_query_is_for_governance_and_admins if {
	queries_as(governance)[0].allowed
	queries_as(object.union(public, {"roles": ["admin"]}))[0].allowed
	every who in [analyst, partner, public] {
		d := queries_as(who)[0]
		not d.allowed
		d.reason == "a requester sees and cancels its own running queries only"
	}
}
