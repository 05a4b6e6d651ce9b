package flightapi

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/admission"
	"github.com/councildata/gateway/gateway/engine"
)

// A statement's life: GetFlightInfo plans it through engine.Query (parse,
// plan, policy decision, audit, source scans) and keeps the running Result
// here under a random ticket id; the ticket is the id with an HMAC binding
// it to the requester and an expiry. DoGet, by the same requester, takes
// the Result out (once) and streams it. The SQL and the plan never leave
// the server, so a ticket cannot alter them.

// pendingQuery is a planned query waiting for its DoGet.
type pendingQuery struct {
	requester string
	res       *engine.Result
	cancel    context.CancelFunc // cancels the query's context (and its scans)
	timer     *time.Timer        // closes it when the ticket expires
	slot      *admission.Ticket  // its query slot, given back when the Result closes
	once      sync.Once
}

// close ends a query nobody is reading.
func (p *pendingQuery) close() {
	p.once.Do(func() {
		p.cancel()
		p.res.Err(context.Canceled) // audited as cancelled (as timed out past its deadline)
		p.res.Close()
		p.slot.Release()
	})
}

// plan runs the engine up to the first batch and returns the FlightInfo
// whose single endpoint carries the ticket.
func (s *Server) plan(ctx context.Context, sqlText string, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	arrived := time.Now()
	queryID := engine.NewQueryID()
	req := s.request(ctx, sqlText, queryID)
	req.Arrived = arrived
	// Admission first: a slot and its memory, or Unavailable /
	// ResourceExhausted with retry-after at once. The slot is held until
	// the Result is closed: after DoGet, or when the ticket expires.
	slot, err := s.cfg.Admission.Admit(ctx, req.Requester.ID, arrived, 0)
	if err != nil {
		return nil, s.fail(ctx, err, queryID)
	}
	// The query outlives this call (DoGet reads it), so it gets its own
	// context; until planning ends, the caller going away cancels it. It
	// ends with the query's timeout, counted from arrival.
	qctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if d := slot.Deadline(); !d.IsZero() {
		var stopTimer context.CancelFunc
		qctx, stopTimer = context.WithDeadline(qctx, d)
		cancel = joinCancel(stopTimer, cancel)
	}
	stop := context.AfterFunc(ctx, cancel)
	// Cancelled through DELETE /v1/queries or the gateway's drain while
	// its ticket waits for a DoGet: the ticket is let go of now.
	var abandonMu sync.Mutex
	var abandon func()
	req.Abandon = func() {
		abandonMu.Lock()
		f := abandon
		abandonMu.Unlock()
		if f != nil {
			f()
		}
	}
	res, err := s.cfg.Engine.Query(qctx, req)
	if err != nil {
		stop()
		cancel()
		slot.Release()
		return nil, s.fail(ctx, err, queryID)
	}
	if !stop() { // the client went away while the sources were read
		cancel()
		res.Close()
		slot.Release()
		return nil, status.Error(codes.Canceled, "the client went away")
	}
	if md := coverageMD(res, metadata.MD{}); md.Len() > 0 {
		_ = grpc.SetHeader(ctx, md)
	}
	if md := rowCapMD(res); len(md) > 0 {
		_ = grpc.SetHeader(ctx, md)
	}
	schema := res.Reader.Schema()
	now := s.cfg.Now()
	tok, id := s.sign.issue(kindTicket, req.Requester.ID, now.Add(s.cfg.TicketTTL))
	p := &pendingQuery{requester: req.Requester.ID, res: res, cancel: cancel, slot: slot}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		p.close()
		return nil, status.Error(codes.Unavailable, "the gateway is shutting down")
	}
	s.tickets[id] = p
	s.mu.Unlock()
	abandonMu.Lock()
	abandon = func() {
		s.mu.Lock()
		pending := s.tickets[id] == p
		if pending {
			delete(s.tickets, id)
		}
		s.mu.Unlock()
		if pending { // not yet taken by a DoGet, which ends with the query
			p.close()
		}
	}
	abandonMu.Unlock()
	// A planned query nobody fetches holds its slot until its ticket
	// expires, or its timeout passes if that comes first.
	wait := s.cfg.TicketTTL
	if d := slot.Deadline(); !d.IsZero() {
		wait = max(min(wait, time.Until(d)), 0)
	}
	p.timer = time.AfterFunc(wait, func() {
		s.mu.Lock()
		if s.tickets[id] == p {
			delete(s.tickets, id)
		}
		s.mu.Unlock()
		p.close()
	})
	ticket, err := flightsql.CreateStatementQueryTicket(tok)
	if err != nil {
		return nil, toStatus(s.log, err, queryID)
	}
	return &flight.FlightInfo{
		Schema:           flight.SerializeSchema(schema, s.mem),
		FlightDescriptor: desc,
		Endpoint:         []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: ticket}}},
		TotalRecords:     -1,
		TotalBytes:       -1,
		AppMetadata:      []byte(queryID),
	}, nil
}

// take checks a ticket against the caller and hands over its query, once.
func (s *Server) take(ctx context.Context, tok []byte) (string, *pendingQuery, error) {
	who := callFrom(ctx).requester
	id, err := s.sign.verify(kindTicket, tok, who.ID, s.cfg.Now())
	switch {
	case errors.Is(err, errExpiredToken):
		return "", nil, status.Error(codes.NotFound, "the ticket has expired; plan the statement again")
	case err != nil:
		return "", nil, status.Error(codes.PermissionDenied, "the ticket is not valid for this requester")
	}
	s.mu.Lock()
	p := s.tickets[id]
	delete(s.tickets, id)
	s.mu.Unlock()
	if p == nil {
		return "", nil, status.Error(codes.NotFound, "the ticket was already used or has expired; plan the statement again")
	}
	if p.timer != nil && !p.timer.Stop() {
		// The expiry timer fired between the check and the take: it closes
		// the query, so this ticket gets nothing.
		return "", nil, status.Error(codes.NotFound, "the ticket has expired; plan the statement again")
	}
	return id, p, nil
}

// GetFlightInfoStatement plans an ad hoc query.
func (s *Server) GetFlightInfoStatement(ctx context.Context, cmd flightsql.StatementQuery, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	if len(cmd.GetTransactionId()) > 0 {
		return nil, status.Error(codes.InvalidArgument, "the gateway is read-only and has no transactions")
	}
	return s.plan(ctx, cmd.GetQuery(), desc)
}

// DoGetStatement streams a planned query. Prepared statements' tickets are
// statement tickets too, so this serves both.
func (s *Server) DoGetStatement(ctx context.Context, cmd flightsql.StatementQueryTicket) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	id, p, err := s.take(ctx, cmd.GetStatementHandle())
	if err != nil {
		return nil, nil, err
	}
	// The client going away, or CancelFlightInfo, cancels the query's
	// context: DuckDB and the scans stop; the reader below ends and its
	// Release closes the Result on the streaming goroutine.
	stop := context.AfterFunc(ctx, p.cancel)
	s.mu.Lock()
	s.running[id] = p.cancel
	s.mu.Unlock()
	rdr := &resultReader{RecordReader: p.res.Reader, ctx: ctx, cancel: p.cancel, s: s, res: p.res, done: func() {
		stop()
		p.cancel()
		p.slot.Release()
		s.mu.Lock()
		delete(s.running, id)
		s.mu.Unlock()
	}}
	ch := make(chan flight.StreamChunk, 2)
	go s.sendChunks(ctx, rdr, ch) // takes ownership: Release closes the Result
	return p.res.Reader.Schema(), ch, nil
}

// sendChunks hands the reader's batches to the DoGet handler, as
// flight.StreamChunksFromReader does, with a bound on each hand-over. A
// client that stops reading blocks gRPC's send on flow control, and gRPC
// has no write deadline; so a batch the handler has not taken within the
// write timeout ends the query: it is cancelled (and audited so), its
// Result closed and its slot given back at once, and the stream is ended
// with the error.
func (s *Server) sendChunks(ctx context.Context, rdr *resultReader, ch chan<- flight.StreamChunk) {
	defer close(ch)
	release := sync.OnceFunc(rdr.Release)
	defer release()
	send := func(c flight.StreamChunk) (sent, stalled bool) {
		var expired <-chan time.Time
		if s.cfg.WriteTimeout > 0 {
			t := time.NewTimer(s.cfg.WriteTimeout)
			defer t.Stop()
			expired = t.C
		}
		select {
		case ch <- c:
			return true, false
		case <-ctx.Done():
			return false, false
		case <-expired:
			return false, true
		}
	}
	for rdr.Next() {
		rec := rdr.RecordBatch()
		rec.Retain()
		sent, stalled := send(flight.StreamChunk{Data: rec})
		if sent {
			continue
		}
		rec.Release()
		if stalled {
			st := rdr.stop(gateway.Errorf(gateway.CodeCanceled, "the client took no batch of the result within server.write_timeout (%s): it stopped reading, so the query was cancelled", s.cfg.WriteTimeout))
			release() // the Result closes and its slot is free, whatever the client does next
			endStream(ctx, st)
			select {
			case ch <- flight.StreamChunk{Err: st}:
			case <-ctx.Done():
			}
		}
		return
	}
	if err := rdr.Err(); err != nil {
		select {
		case ch <- flight.StreamChunk{Err: err}:
		case <-ctx.Done():
		}
		return
	}
	if c, ok := markerChunk(s.mem, rdr.Schema(), rdr.res); ok {
		if sent, _ := send(c); !sent {
			c.Data.Release()
		}
	}
}

// endStream ends a server stream with a status from outside its handler.
// A handler blocked in a send on flow control returns only when its
// stream ends; grpc-go ends it when the status is written, and offers no
// other way to do so, so this reaches the transport stream's WriteStatus.
// Without it the handler returns once the client reads again or goes
// away; the query is closed either way.
func endStream(ctx context.Context, err error) {
	if ts, ok := grpc.ServerTransportStreamFromContext(ctx).(interface {
		WriteStatus(*status.Status) error
	}); ok {
		_ = ts.WriteStatus(status.Convert(err))
	}
}

// joinCancel is one cancel func for two.
func joinCancel(a, b context.CancelFunc) context.CancelFunc {
	return func() { a(); b() }
}

// Trailers of a statement's DoGet.
const (
	QueryIDTrailer    = "x-gateway-query-id"
	WarningTrailer    = "x-gateway-warning" // one per warning
	SuppressedTrailer = "x-gateway-suppressed"
)

// asciiOnly keeps a warning legal as gRPC metadata.
func asciiOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// resultReader hands the engine's reader to Flight: errors are classified
// by the Result and mapped to gRPC codes, and Release closes the Result
// exactly once.
type resultReader struct {
	array.RecordReader
	ctx    context.Context // the DoGet call's
	cancel context.CancelFunc
	s      *Server
	res    *engine.Result
	done   func()
	err    error
	once   sync.Once
}

func (r *resultReader) Next() bool {
	if r.RecordReader.Next() {
		return true
	}
	if err := r.RecordReader.Err(); err != nil {
		r.err = toStatus(r.s.log, r.res.Err(err), r.res.QueryID)
	}
	return false
}

func (r *resultReader) Err() error { return r.err }

// stop ends a query the client stopped reading: err is recorded in the
// Result (its audit record says cancelled), then the query is cancelled.
// It returns err as the client sees it.
func (r *resultReader) stop(err error) error {
	r.err = toStatus(r.s.log, r.res.Err(err), r.res.QueryID)
	r.cancel()
	return r.err
}

func (r *resultReader) Retain() {}

func (r *resultReader) Release() {
	r.once.Do(func() {
		if r.err == nil && r.ctx.Err() != nil {
			r.cancel()
			r.res.Err(r.ctx.Err()) // the client went away: audited as cancelled
		}
		r.res.Close() // releases the engine's reader; warnings are final
		r.done()
		// Warnings travel beside the result, as in HTTP: in the DoGet's
		// trailers, with the query id and the suppressed-group count.
		md := metadata.Pairs(QueryIDTrailer, r.res.QueryID, SuppressedTrailer, strconv.FormatInt(r.res.Suppressed(), 10))
		truncationMD(md, r.res)
		for _, w := range r.res.Warnings() {
			md.Append(WarningTrailer, asciiOnly(w))
		}
		md = coverageMD(r.res, md)
		_ = grpc.SetTrailer(r.ctx, md)
	})
}

// CancelFlightInfo cancels a planned or running query of the caller's.
func (s *Server) CancelFlightInfo(ctx context.Context, req *flight.CancelFlightInfoRequest) (flight.CancelFlightInfoResult, error) {
	st := flight.CancelStatusNotCancellable
	info := req.GetInfo()
	if info == nil || len(info.Endpoint) == 0 {
		return flight.CancelFlightInfoResult{Status: st}, status.Error(codes.InvalidArgument, "no FlightInfo to cancel")
	}
	who := callFrom(ctx).requester
	for _, ep := range info.Endpoint {
		t, err := flightsql.GetStatementQueryTicket(ep.GetTicket())
		if err != nil {
			return flight.CancelFlightInfoResult{Status: st}, status.Error(codes.InvalidArgument, "not a statement's FlightInfo")
		}
		id, err := s.sign.verify(kindTicket, t.GetStatementHandle(), who.ID, s.cfg.Now())
		if errors.Is(err, errExpiredToken) {
			continue // nothing left to cancel
		}
		if err != nil {
			return flight.CancelFlightInfoResult{Status: st}, status.Error(codes.PermissionDenied, "the ticket is not valid for this requester")
		}
		s.mu.Lock()
		p := s.tickets[id]
		delete(s.tickets, id)
		running := s.running[id]
		s.mu.Unlock()
		switch {
		case p != nil:
			if p.timer != nil {
				p.timer.Stop()
			}
			p.close()
			st = flight.CancelStatusCancelled
		case running != nil:
			running()
			st = flight.CancelStatusCancelling
		}
	}
	return flight.CancelFlightInfoResult{Status: st}, nil
}

// coverageMD adds to md the councils the answer leaves out: by policy
// (ExcludedHeader) and because their stores failed (FailedHeader).
func coverageMD(res *engine.Result, md metadata.MD) metadata.MD {
	for _, e := range res.Excluded() {
		md.Append(ExcludedHeader, e.HeaderValue())
	}
	for _, e := range res.Failed() {
		md.Append(FailedHeader, e.HeaderValue())
	}
	return md
}
