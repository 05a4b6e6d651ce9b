# Shared fixtures for the policy tests: the demo requesters, the six demo
# councils' tables, and a helper that builds an input document.
package gateway_test

now := "2026-11-27T10:00:00Z"

analyst := {
	"id": "analyst@edinburgh",
	"organisation": "The City of Edinburgh Council",
	"roles": ["analyst"],
	"purposes": ["service-planning", "research"],
}

partner := {
	"id": "partner@nhs-lothian",
	"organisation": "NHS Lothian",
	"roles": ["partner"],
	"purposes": ["health-and-social-care"],
}

public := {
	"id": "public",
	"organisation": "Public",
	"roles": ["public"],
	"purposes": ["transparency"],
}

governance := {
	"id": "governance@edinburgh",
	"organisation": "The City of Edinburgh Council",
	"roles": ["governance"],
	"purposes": ["audit"],
}

councils := {
	"edinburgh": {"council": "The City of Edinburgh Council", "gss": "S12000036", "spend": "payments_over_500", "planning": "planning_applications"},
	"glasgow": {"council": "Glasgow City Council", "gss": "S12000049", "spend": "spend", "planning": "planning"},
	"stirling": {"council": "Stirling Council", "gss": "S12000030", "spend": "payments", "planning": "planning"},
	"fife": {"council": "Fife Council", "gss": "S12000047", "spend": "payments", "planning": "planning_register"},
	"highland": {"council": "The Highland Council", "gss": "S12000017", "spend": "spend", "planning": "planning"},
	"dundee": {"council": "Dundee City Council", "gss": "S12000042", "spend": "payments", "planning": "planning"},
}

# spend(src, cols) is src's table read as std.spend_over_500.
spend(src, cols) := {
	"source": src, "council": councils[src].council, "gss": councils[src].gss,
	"table": councils[src].spend, "dataset": "spend_over_500", "columns": cols,
}

# planning(src, cols) is src's table read as std.planning_applications.
planning(src, cols) := {
	"source": src, "council": councils[src].council, "gss": councils[src].gss,
	"table": councils[src].planning, "dataset": "planning_applications", "columns": cols,
}

# direct(src, table, cols) is a council's own table named in the query.
direct(src, table, cols) := {
	"source": src, "council": councils[src].council, "gss": councils[src].gss,
	"table": table, "dataset": "", "columns": cols,
}

audit_table := {"source": "gateway", "council": "", "gss": "", "table": "audit", "dataset": "", "columns": ["timestamp", "outcome"]}

request(who, purpose, tables) := {
	"action": "query",
	"requester": who,
	"purpose": purpose,
	"case_ref": "",
	"query_id": "q-test",
	"time": now,
	"tables": tables,
}

# decide(doc) is the decision for doc, one table decision per table.
decide(doc) := d if {
	d := data.gateway.decision.tables with input as doc
}

# one(who, purpose, t) is the decision for a single table.
one(who, purpose, t) := decide(request(who, purpose, [t]))[0]

spend_cols := ["payment_date", "organisational_unit", "beneficiary_name", "beneficiary_type", "amount"]

planning_cols := ["reference", "received_date", "application_type", "postcode", "ward", "status"]
