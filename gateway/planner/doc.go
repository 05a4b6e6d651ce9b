// Package planner decides what each council's store is asked for by a
// query, before anything is read: it resolves the query's tables in the
// catalog (council tables and the standard datasets' members), works out
// the columns, filters, limit or top-N and partial aggregate each scan may
// be offered, describes the tables to the policy (Plan.Input), attaches the
// policy's decisions (Plan.Attach) and fits the scans to them (Plan.Fit)
// through gateway/enforce's predicates.
//
// A Plan is what was decided, and nothing that happens when it runs:
// gateway/exec keeps the state of each running scan (its stream, what the
// store applied, the rows it sent) beside it, so one Plan serves a query
// and its EXPLAIN alike.
package planner
