// Package admission decides which queries may start, and how many calls
// each council's store may be sent at once, so that no client, requester
// or council can hold the gateway's capacity.
//
// A Controller stands in front of the engine's query slots, used by both
// doors before engine.Query: a fixed number of running slots, a bounded
// FIFO queue for the rest, a memory budget each running query reserves its
// memory limit from, and a cap on what one requester may have running or
// waiting. A query that cannot wait is refused at once with an error that
// names the limit and says when to retry (gateway.Error.RetryAfter):
// CodeOverloaded (503) when the queue is full or the wait would outlast
// the query's own timeout, CodeTooManyRequests (429) when the requester is
// at its cap. A query's wait counts against its timeout, which runs from
// its arrival.
//
// LimitSource wraps a gateway.Source so that at most a fixed number of a
// council's scans are open at once; when they are all open and the store
// has not moved for the stall timeout, it is taken as stuck and further
// scans fail at once with CodeSourceBusy naming the council, so a slow or
// blackholed store holds no more of the gateway's query slots than its
// own limit. The wrapper keeps the optional capabilities of the source it
// wraps (gateway.Aggregator, gateway.Planner).
//
// It never reads data, builds SQL or decides policy.
package admission
