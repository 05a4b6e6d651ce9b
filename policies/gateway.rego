# The gateway's access decision. The gateway evaluates data.gateway.decision
# once per query, with the input document described in README.md (the Go
# type gateway.PolicyInput), and enforces the answer: one object per input
# table, in the same order, shaped like gateway.TableDecision.
#
# Everything is denied unless a rule below allows it:
#   - the catalog (action "catalog": metadata only) to the governance role;
#   - data-quality reports (action "quality": counts and rates over a sample,
#     no row) to the governance role, and to a council's own staff for
#     their council;
#   - gateway.audit (the audit log) to the governance role;
#   - a council's own staff reading their own council's data, in full;
#   - anyone else reading a standard dataset (std.<dataset>) through an
#     active, in-date data-sharing agreement (agreements.rego) that names
#     them, the council, the dataset, every column the query uses, and the
#     purpose the request declared.
#
# Reasons name only what the requester asked for and the agreements they are
# a receiving party of; they never say whether rows or tables exist.
package gateway

# The actions the gateway asks about.
actions := {"query", "explain", "catalog", "quality", "agreements", "verify", "dry_run", "queries"}

# Roles whose holders are a council's own staff for its own data. Governance
# officers are deliberately not among them: they read the audit log.
own_council_roles := {"analyst", "officer"}

# The pseudo-agreement ids recorded for access that no agreement file gives.
own_council_id := "own-council"

audit_governance_id := "audit-governance"

governance_catalog_id := "governance-catalog"

requester_roles := {r | some r in input.requester.roles}

requester_purposes := {p | some p in input.requester.purposes}

# who names the requester in reasons: "NHS Lothian (partner@nhs-lothian)".
who := sprintf("%s (%s)", [input.requester.organisation, input.requester.id]) if {
	input.requester.organisation != ""
} else := sprintf("requester %s", [input.requester.id])

decision := {"tables": [deny(unknown_action_reason) | some _ in input.tables]} if {
	not input.action in actions
} else := {"tables": [governance_catalog | some _ in input.tables]} if {
	input.action == "catalog"
	"governance" in requester_roles
} else := {"tables": [quality_decision(t) | some t in input.tables]} if {
	input.action == "quality"
} else := {"tables": [agreements_decision | some _ in input.tables]} if {
	input.action == "agreements"
} else := {"tables": [dry_run_decision | some _ in input.tables]} if {
	input.action == "dry_run"
} else := {"tables": [queries_decision | some _ in input.tables]} if {
	input.action == "queries"
} else := {"tables": [gateway_table(t) | some t in input.tables]} if {
	# verifying the audit chain (GET /v1/audit/verify) reads the whole log:
	# whoever may read gateway.audit
	input.action == "verify"
} else := {"tables": [decide(t) | some t in input.tables]}

# A data-quality report (GET /v1/quality) says, per council and standard
# column, how many sampled rows failed a conversion, were NULL, redacted,
# or repeated a key: counts, never a row.
quality_decision(t) := {
	"allowed": true,
	"reason": "the governance role may see data-quality reports (counts, no rows)",
	"agreements": [governance_catalog_id],
} if {
	"governance" in requester_roles
} else := {
	"allowed": true,
	"reason": sprintf("%s staff checking their own council's data", [t.council]),
	"agreements": [own_council_id],
} if {
	t.council == requester_council
	own_council_staff
} else := deny("data-quality reports are for the governance role, and for a council's own staff about their council")

# The data-sharing agreements in force, their files and standing (GET
# /v1/agreements and the console's governance pages) are the governance
# role's to see: who shares what with whom, not the data.
agreements_decision := {
	"allowed": true,
	"reason": "the governance role may see the data-sharing agreements",
	"agreements": [governance_catalog_id],
} if {
	"governance" in requester_roles
} else := deny("the data-sharing agreements are shown to the governance role only")

# A dry run asks the policy as another requester (the console's "who can
# see what" matrix, POST /v1/explain with "as"): it shows that requester's
# terms and plans, never a row. It is the governance role's, who answer
# for the terms; everyone else sees only their own.
dry_run_decision := {
	"allowed": true,
	"reason": "the governance role may see what the policy decides for other requesters (dry runs, no data)",
	"agreements": [governance_catalog_id],
} if {
	"governance" in requester_roles
} else := deny("dry runs as another requester are for the governance role only")

# Every requester's running queries (GET and DELETE /v1/queries): the SQL
# and purpose of others' work, and the power to stop it, for the
# governance and admin roles; everyone else sees and cancels their own.
queries_decision := {
	"allowed": true,
	"reason": "the governance and admin roles may see and cancel every running query",
	"agreements": [governance_catalog_id],
} if {
	some r in requester_roles
	r in {"governance", "admin"}
} else := deny("a requester sees and cancels its own running queries only")

unknown_action_reason := sprintf("action %q is not one the policy knows; denied", [input.action])

decide(t) := gateway_table(t) if {
	t.source == "gateway"
} else := own_council_member_decision(t) if {
	t.council == requester_council
} else := deny(direct_read_reason(t)) if {
	t.dataset == ""
} else := best.decision if {
	best := best_view(t)
} else := deny_request(no_agreement_reason(t)) if {
	not usable_purpose
} else := deny(no_agreement_reason(t))

# usable_purpose: the request declared one of the requester's registered
# purposes. Without one, a denial is about the request, not about a
# council's terms: deny_request marks it so (coverage "all") and the query
# is refused rather than answered over the requester's own council alone.
usable_purpose if input.purpose in requester_purposes

deny_request(reason) := {"allowed": false, "reason": reason, "coverage": "all"}

# requester_council is the requester's organisation, when it names one; a
# table of that council is the requester's own council's.
requester_council := input.requester.organisation if input.requester.organisation != ""

# A council's own members: its staff read its data in full, the others
# (governance officers) none of it.
own_council_member_decision(t) := own_council_decision(t) if {
	own_council_staff
} else := deny(own_staff_only_reason(t))

own_council_staff if {
	some r in requester_roles
	r in own_council_roles
}

deny(reason) := {"allowed": false, "reason": reason}

# The governance role sees every table in the catalog: what exists, not its
# data. Only for action "catalog"; a query or explain is decided as below.
governance_catalog := {
	"allowed": true,
	"reason": "the governance role may see the catalog (metadata only)",
	"agreements": [governance_catalog_id],
}

# The gateway's own tables: only the audit log exists, for governance.
gateway_table(t) := {
	"allowed": true,
	"reason": "the governance role may read the audit log",
	"agreements": [audit_governance_id],
} if {
	t.table == "audit"
	"governance" in requester_roles
} else := deny("the audit log (gateway.audit) is readable only by the governance role") if {
	t.table == "audit"
} else := deny(sprintf("gateway.%s is not a table the policy allows", [t.table]))

own_council_decision(t) := {
	"allowed": true,
	"reason": sprintf("%s staff reading their own council's data", [t.council]),
	"agreements": [own_council_id],
}

own_staff_only_reason(t) := sprintf(
	"%s's own data is open to its staff roles (%s), not to %s with roles [%s]; the governance role reads the audit log",
	[t.council, concat(", ", sort(own_council_roles)), input.requester.id, concat(", ", sort(requester_roles))],
)

direct_read_reason(t) := sprintf(
	"only %s's own staff may read its table %s directly; others read the standard datasets (std.*) under a data-sharing agreement",
	[council_name(t), t.table],
)

council_name(t) := t.council if t.council != ""

else := t.source

# table_name is what the requester called the table: the dataset, or the
# council's own table.
table_name(t) := t.dataset if t.dataset != ""

else := t.table
