// Package enforce is where a policy decision becomes what a query can do:
// the one package a reviewer reads to know what the gateway lets out.
//
//   - Statement: what a query may name and call. Only catalog names
//     (<source>.<table>, std.<dataset>) and CTEs in scope; no catalog
//     qualifier, no table function but range, generate_series and unnest,
//     no function that reads the engine's own state, no CTE named like the
//     gateway's own relations.
//   - The predicates over one table's decision (FiltersOrMasks,
//     StoreMayLimit, StoreMayAggregate, StoreAnswersWhole, Masked): what
//     the engine may offer a store, and when a store's rows are already
//     what the requester may see. The engine asks them; it decides none of
//     these itself.
//   - Select: the relation of a table's rows after its row filter and
//     masks, which is all the analyst's statement can ever read of it.
//   - Aggregate-only data (Rule, CheckAggregateOnly, Groups): the grammar of
//     what may be grouped, filtered and aggregated, and the removal of
//     groups under the minimum before anything is ordered or limited.
//   - Guard: the row cap on the result, and the warnings for what was cut.
//
// The engine loads each table's rows through Select on a connection of
// their own, so the database the analyst's statement is bound in never
// holds a row or a value the policy hides (see gateway/engine).
package enforce
