// Package engine answers an analyst's query: the one path every door
// (HTTP, Flight SQL) calls, in this order, each step in a package of its
// own so a reviewer sees where each rule lives:
//
//  1. parse with DuckDB's own parser and read the tree (gateway/sqltree),
//     and refuse what no query may name or call (gateway/enforce.Statement);
//  2. plan: resolve its tables in the catalog and decide what each council's
//     store may be offered (gateway/planner);
//  3. ask the policy once about every table the plan reads, attach the
//     decisions and fit the plan to them (planner.Plan.Attach and Fit, which
//     ask gateway/enforce's predicates), and check an aggregate-only query's
//     grammar (enforce.CheckAggregateOnly);
//  4. audit the decision before anything is read (no record, no data);
//  5. run it (gateway/exec): every scan in parallel, each council's rows
//     loaded through its policy relation on a connection of its own, the
//     statement run where only policy-applied rows exist, the result
//     streamed back as Arrow behind the row cap;
//  6. audit the end, with the rows returned.
//
// Explain runs steps 1 to 4 and asks the stores and DuckDB how they would
// run it, reading no rows; Visible asks the policy which catalog tables a
// requester may see.
package engine
