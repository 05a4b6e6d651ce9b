// Package policy decides, with Open Policy Agent, which councils, tables,
// columns and rows a query may read: it loads the Rego modules and the
// data-sharing agreements under the policy directory, prepares the query
// data.gateway.decision once, and evaluates it in process for every query
// (gateway.Decider).
//
// It is the only importer of OPA. It never decides anything itself: the
// Rego in policies/ is the policy, and this package only loads, validates,
// evaluates and maps its answer. It must never fail open: an undefined or
// malformed answer, an error or a timeout denies every table, and a broken
// file on reload is rejected while the previous policy stays in force.
//
// Agreements are YAML files at agreements/<id>/agreement.yaml. OPA's own
// loader (the one `opa test` uses) reads them, so they appear to Rego as
// data.agreements[<id>] exactly as they do under the standard CLI; this
// package first validates each one strictly (unknown fields, dates, status,
// mask kinds), naming the file and line of any mistake.
//
// The policy's agreement index (data.gateway.agreement_index, everything
// about the agreements that does not depend on the request) is evaluated
// once per load and pinned into the prepared decision query with `with`, so
// a decision only does the per-request work; the index's rules must not read
// input or call non-deterministic built-ins, and a policy whose index does is
// rejected.
package policy
