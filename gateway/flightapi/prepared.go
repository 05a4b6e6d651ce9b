package flightapi

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/councildata/gateway/gateway/sqltext"
)

// A prepared statement is kept here under an opaque handle bound to its
// requester. Its parameters are bound by substituting SQL literals, quoted
// by their Arrow type (see params.go), before the statement is planned: the
// engine and the policy see the final SQL, exactly as if it had been sent
// as a statement, and so does the audit log.

type preparedStatement struct {
	requester string
	sql       string
	params    sqltext.Template

	mu       sync.Mutex
	bound    []string // SQL literals, one per parameter
	lastUsed time.Time
}

// preparedHandleTTL bounds a handle's life; an idle statement is also
// dropped after the session lifetime.
const preparedHandleTTL = 24 * time.Hour

func (s *Server) preparedFor(ctx context.Context, handle []byte) (string, *preparedStatement, error) {
	who := callFrom(ctx).requester
	id, err := s.sign.verify(kindPrepared, handle, who.ID, s.cfg.Now())
	if err != nil {
		return "", nil, status.Error(codes.NotFound, "no such prepared statement for this requester; prepare it again")
	}
	s.mu.Lock()
	p := s.prepared[id]
	s.mu.Unlock()
	if p == nil {
		return "", nil, status.Error(codes.NotFound, "the prepared statement was closed or has expired; prepare it again")
	}
	p.mu.Lock()
	p.lastUsed = s.cfg.Now()
	p.mu.Unlock()
	return id, p, nil
}

// CreatePreparedStatement finds the statement's parameters ($1, $2, ... or
// ?) and returns a handle. The result schema is not known until the
// statement is planned with its parameters, so DatasetSchema is left out
// (the FlightInfo of each execution carries it).
func (s *Server) CreatePreparedStatement(ctx context.Context, req flightsql.ActionCreatePreparedStatementRequest) (flightsql.ActionCreatePreparedStatementResult, error) {
	var res flightsql.ActionCreatePreparedStatementResult
	if len(req.GetTransactionId()) > 0 {
		return res, status.Error(codes.InvalidArgument, "the gateway is read-only and has no transactions")
	}
	params, err := sqltext.Params(req.GetQuery(), true)
	if err != nil {
		return res, status.Error(codes.InvalidArgument, err.Error())
	}
	who := callFrom(ctx).requester
	now := s.cfg.Now()
	tok, id := s.sign.issue(kindPrepared, who.ID, now.Add(preparedHandleTTL))
	s.mu.Lock()
	s.prepared[id] = &preparedStatement{requester: who.ID, sql: req.GetQuery(), params: params, lastUsed: now}
	s.sweepLocked(now)
	s.mu.Unlock()
	fields := make([]arrow.Field, params.Count)
	for i := range fields {
		// The type is not known before binding; any type may be bound.
		// Strings work everywhere, as DuckDB casts string literals.
		fields[i] = arrow.Field{Name: fmt.Sprintf("$%d", i+1), Type: arrow.BinaryTypes.String, Nullable: true}
	}
	isUpdate := false
	res.Handle, res.ParameterSchema, res.IsUpdate = tok, arrow.NewSchema(fields, nil), &isUpdate
	return res, nil
}

// ClosePreparedStatement forgets a statement.
func (s *Server) ClosePreparedStatement(ctx context.Context, req flightsql.ActionClosePreparedStatementRequest) error {
	id, _, err := s.preparedFor(ctx, req.GetPreparedStatementHandle())
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.prepared, id)
	s.mu.Unlock()
	return nil
}

// DoPutPreparedStatementQuery binds parameters: one row, one column per
// parameter. The handle does not change.
func (s *Server) DoPutPreparedStatementQuery(ctx context.Context, cmd flightsql.PreparedStatementQuery, rdr flight.MessageReader, _ flight.MetadataWriter) ([]byte, error) {
	_, p, err := s.preparedFor(ctx, cmd.GetPreparedStatementHandle())
	if err != nil {
		return nil, err
	}
	var bound []string
	rows := 0
	for rdr.Next() {
		rec := rdr.RecordBatch()
		for r := 0; r < int(rec.NumRows()); r++ {
			rows++
			if rows > 1 {
				continue
			}
			if int(rec.NumCols()) != p.params.Count {
				return nil, status.Errorf(codes.InvalidArgument, "the statement has %d parameters; %d were bound", p.params.Count, rec.NumCols())
			}
			bound = make([]string, rec.NumCols())
			for c := range bound {
				if bound[c], err = literal(rec.Column(c), r); err != nil {
					return nil, status.Errorf(codes.InvalidArgument, "parameter %d: %v", c+1, err)
				}
			}
		}
	}
	if err := rdr.Err(); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "reading the parameters: %v", err)
	}
	if rows > 1 {
		return nil, status.Errorf(codes.InvalidArgument, "bind one row of parameters per execution; %d were sent", rows)
	}
	if rows == 0 && p.params.Count > 0 {
		return nil, status.Errorf(codes.InvalidArgument, "the statement has %d parameters; none were bound", p.params.Count)
	}
	p.mu.Lock()
	p.bound = bound
	p.mu.Unlock()
	return cmd.GetPreparedStatementHandle(), nil
}

// GetFlightInfoPreparedStatement plans the statement with its bound
// parameters, like a statement.
func (s *Server) GetFlightInfoPreparedStatement(ctx context.Context, cmd flightsql.PreparedStatementQuery, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	_, p, err := s.preparedFor(ctx, cmd.GetPreparedStatementHandle())
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	bound := p.bound
	p.mu.Unlock()
	if len(bound) != p.params.Count {
		return nil, status.Errorf(codes.InvalidArgument, "the statement has %d parameters; bind them before executing", p.params.Count)
	}
	return s.plan(ctx, p.params.Substitute(bound), desc)
}

// DoGetPreparedStatement is not reached: prepared statements' endpoints
// carry statement tickets.
func (s *Server) DoGetPreparedStatement(context.Context, flightsql.PreparedStatementQuery) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return nil, nil, status.Error(codes.InvalidArgument, "fetch a prepared statement with the ticket from its FlightInfo")
}
