package pgwire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/admission"
	"github.com/councildata/gateway/gateway/audit"
	"github.com/councildata/gateway/gateway/engine"
	"github.com/councildata/gateway/gateway/sqltext"
)

// session is one client connection after startup.
type session struct {
	s       *Server
	conn    net.Conn
	cr      *connReader
	be      *pgproto3.Backend
	who     *gateway.Requester
	remote  string
	pid     uint32
	secret  []byte
	user    string
	db      string
	types   *pgtype.Map
	buf     []byte
	stmts   map[string]*prepared
	portals map[string]*portal
	tx      byte // 'I' idle, 'T' in a block, 'E' a failed block
	failed  bool // an extended-protocol error: skip to Sync

	// What the session declared: purpose, case reference, coverage,
	// partial answers and a statement timeout; and the settings drivers
	// set and read back.
	purpose, caseRef, coverage string
	partial                    bool
	timeout                    time.Duration
	settings                   map[string]string
	lastQueryID                string // SHOW gateway.query_id

	mu      sync.Mutex
	running context.CancelFunc // the query being run or streamed
	closing bool
}

// prepared is a Parse'd statement.
type prepared struct {
	st   *statement
	tmpl sqltext.Template
	oids []uint32 // parameter types: the client's, or inferred by Describe
	cols []column // the columns Describe told the client, if it did
}

// portal is a bound statement (or a DECLAREd cursor) and, once started,
// its stream of rows.
type portal struct {
	st      *statement
	sql     string
	formats []int16
	wire    []column // the columns the client was told, to encode by
	told    bool     // RowDescription (or NoData) was sent for it
	out     *stream
	done    bool
	hold    bool // a cursor: lives until CLOSE or the block ends
}

// stream is a started query's rows.
type stream struct {
	cols    []column
	rdr     array.RecordReader
	res     *engine.Result // nil for a catalog query
	slot    *admission.Ticket
	cancel  context.CancelFunc
	cur     arrow.RecordBatch
	row     int
	sent    int64
	queryID string
	expiry  *time.Timer
	// mu is held while rows are sent, so the expiry timer's close waits
	// for the sender; closed says the stream has ended.
	mu     sync.Mutex
	closed bool
	// logged writes the query's access line when the stream ends.
	logged func(rows int64, err error)
}

func newSession(s *Server, conn net.Conn, be *pgproto3.Backend, who *gateway.Requester, params map[string]string, pid uint32, secret []byte) *session {
	se := &session{s: s, conn: conn, be: be, who: who, remote: conn.RemoteAddr().String(), pid: pid, secret: secret,
		user: params["user"], db: params["database"], types: pgtype.NewMap(), stmts: map[string]*prepared{},
		portals: map[string]*portal{}, tx: 'I', settings: map[string]string{}}
	if se.db == "" {
		se.db = se.user
	}
	for k, v := range defaultSettings() {
		se.settings[k] = v
	}
	if v := params["application_name"]; v != "" {
		se.settings["application_name"] = v
	}
	se.settings["session_authorization"] = who.ID
	// The purpose: options='-c gateway.purpose=...' first, else the
	// database name, unless that is a generic one.
	if !genericDatabase(se.db, se.user) {
		se.purpose = se.db
	}
	// Tools that let a user set only the application name (some BI
	// connectors) may carry the purpose in it: "Power BI; gateway.purpose=research".
	if _, rest, ok := strings.Cut(params["application_name"], "gateway.purpose="); ok {
		se.purpose, _, _ = strings.Cut(rest, ";")
		se.purpose = strings.TrimSpace(se.purpose)
	}
	for k, v := range parseOptions(params["options"]) {
		if err := se.set(k, v); err != nil {
			s.log.Info("postgres: startup option ignored", "option", k, "err", err)
		}
	}
	return se
}

// genericDatabase names databases that are not a purpose: what clients
// send by default (the user name, postgres) and the gateway's own names.
func genericDatabase(db, user string) bool {
	switch strings.ToLower(db) {
	case "", "postgres", "councils", "gateway", "template1", strings.ToLower(user):
		return true
	}
	return false
}

// parseOptions reads the startup "options": -c name=value and
// --name=value, backslash-escaped spaces kept.
func parseOptions(opts string) map[string]string {
	out := map[string]string{}
	var words []string
	var cur strings.Builder
	esc := false
	for _, r := range opts {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case r == '\\':
			esc = true
		case r == ' ' || r == '\t':
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-c" && i+1 < len(words):
			i++
			w = words[i]
		case strings.HasPrefix(w, "-c"):
			w = w[2:]
		case strings.HasPrefix(w, "--"):
			w = w[2:]
		default:
			continue
		}
		if k, v, ok := strings.Cut(w, "="); ok {
			out[strings.ToLower(k)] = v
		}
	}
	return out
}

func defaultSettings() map[string]string {
	return map[string]string{
		"server_version": ServerVersion, "server_version_num": "150000", "server_encoding": "UTF8",
		"client_encoding": "UTF8", "datestyle": "ISO, MDY", "intervalstyle": "postgres", "timezone": "UTC",
		"integer_datetimes": "on", "standard_conforming_strings": "on", "is_superuser": "off",
		"application_name": "", "extra_float_digits": "1", "search_path": "std", "max_identifier_length": "63",
		"transaction_isolation": "read committed", "default_transaction_isolation": "read committed",
		"transaction_read_only": "on", "default_transaction_read_only": "on", "in_hot_standby": "off",
		"lc_collate": "C", "lc_ctype": "C", "lc_messages": "C", "lc_monetary": "C", "lc_numeric": "C", "lc_time": "C",
		"statement_timeout": "0", "lock_timeout": "0", "idle_in_transaction_session_timeout": "0",
		"bytea_output": "hex", "block_size": "8192", "max_connections": "256", "ssl": "off",
	}
}

// reported are the settings sent as ParameterStatus at startup.
var reported = []string{"server_version", "server_encoding", "client_encoding", "datestyle", "intervalstyle",
	"timezone", "integer_datetimes", "standard_conforming_strings", "is_superuser", "application_name",
	"session_authorization", "default_transaction_read_only", "in_hot_standby"}

// displayName is PostgreSQL's spelling of a setting in ParameterStatus.
var displayName = map[string]string{"datestyle": "DateStyle", "intervalstyle": "IntervalStyle", "timezone": "TimeZone"}

func (se *session) run() {
	se.be.Send(&pgproto3.AuthenticationOk{})
	for _, k := range reported {
		name := k
		if d := displayName[k]; d != "" {
			name = d
		}
		v := se.settings[k]
		if k == "server_version" {
			v = ServerVersion + " (Council Data Gateway " + se.s.cfg.Version + ")"
		}
		se.be.Send(&pgproto3.ParameterStatus{Name: name, Value: v})
	}
	se.be.Send(&pgproto3.BackendKeyData{ProcessID: se.pid, SecretKey: se.secret})
	se.ready()
	if err := se.flush(); err != nil {
		return
	}
	for {
		_ = se.conn.SetReadDeadline(time.Now().Add(se.s.cfg.IdleTimeout))
		msg, err := se.be.Receive()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			se.mu.Lock()
			closing := se.closing
			se.mu.Unlock()
			if !closing {
				se.be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: stateIdleTimeout,
					Message: fmt.Sprintf("terminating connection due to idle-session timeout: it sent nothing for %s (server.postgres_idle_timeout)", se.s.cfg.IdleTimeout)})
				_ = se.flush()
			}
			return
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) {
				se.be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: stateProtocolViolation,
					Message: "invalid protocol message: " + err.Error()})
				_ = se.flush()
			}
			return
		}
		if !se.handle(msg) {
			return
		}
	}
}

// handle answers one message; false ends the session.
func (se *session) handle(msg pgproto3.FrontendMessage) bool {
	switch m := msg.(type) {
	case *pgproto3.Query:
		se.simpleQuery(m.String)
		se.ready()
	case *pgproto3.Parse, *pgproto3.Bind, *pgproto3.Describe, *pgproto3.Execute, *pgproto3.Close:
		if se.failed {
			return true
		}
		if err := se.extended(m); err != nil {
			se.fail(err, "")
			se.failed = true
		}
	case *pgproto3.Sync:
		se.failed = false
		if se.tx == 'I' {
			se.closePortals(false)
		}
		se.ready()
	case *pgproto3.Flush:
	case *pgproto3.Terminate:
		return false
	case *pgproto3.CopyData, *pgproto3.CopyDone, *pgproto3.CopyFail:
		// Nothing is ever copied in; stray copy messages are dropped.
		return true
	case *pgproto3.FunctionCall:
		se.fail(newError(stateNotSupported, "the fast-path function call interface is not supported"), "")
		se.ready()
	default:
		se.fail(newError(stateProtocolViolation, "unexpected message %T", msg), "")
		se.ready()
	}
	return se.flush() == nil
}

func (se *session) ready() { se.be.Send(&pgproto3.ReadyForQuery{TxStatus: se.tx}) }

// flush writes what is buffered, within the write timeout.
func (se *session) flush() error {
	if d := se.s.cfg.WriteTimeout; d > 0 {
		_ = se.conn.SetWriteDeadline(time.Now().Add(d))
	}
	return se.be.Flush()
}

// fail sends an error; in a transaction block the block is failed.
func (se *session) fail(err error, queryID string) {
	se.be.Send(toResponse(se.s.log, err, queryID))
	if se.tx == 'T' {
		se.tx = 'E'
	}
}

func (se *session) shutdown() {
	se.mu.Lock()
	se.closing = true
	if se.running != nil {
		se.running() // audited as cancelled
	}
	se.mu.Unlock()
	// Closing the connection ends the session's read at once, whatever
	// deadline its loop set last.
	_ = se.conn.Close()
}

func (se *session) cancelRunning() {
	se.mu.Lock()
	defer se.mu.Unlock()
	if se.running != nil {
		se.running()
	}
}

func (se *session) setRunning(c context.CancelFunc) {
	se.mu.Lock()
	se.running = c
	se.mu.Unlock()
}

func (se *session) closeAll() {
	se.closePortals(true)
}

// closePortals ends the portals: all of them, or those that do not
// outlive the transaction.
func (se *session) closePortals(all bool) {
	for name, p := range se.portals {
		if all || !p.hold || name == "" {
			p.close(context.Canceled)
			delete(se.portals, name)
		}
	}
}

// request is the engine request of one query of this session.
func (se *session) request(sqlText, queryID string) engine.Request {
	return engine.Request{SQL: sqlText, QueryID: queryID, Requester: se.who, Purpose: se.purpose, CaseRef: se.caseRef,
		Coverage: se.coverage, Partial: se.partial, Timeout: se.timeout, Door: audit.DoorPostgres, RemoteAddr: se.remote,
		Arrived: time.Now()}
}

// catalog returns the session's catalog database; release it after.
func (se *session) catalog(ctx context.Context) (*catalogEntry, error) {
	// Everything the listing can depend on: who (all of what the policy
	// sees of them) and what the session declared; and the database name
	// current_database() shows. Not the client's user name: current_user
	// is the requester's id.
	who := se.who
	key := strings.Join([]string{who.ID, who.Organisation, strings.Join(who.Roles, ","), strings.Join(who.Purposes, ","),
		se.purpose, se.caseRef, se.db}, "\x00")
	eng := se.s.cfg.Engine
	return se.s.catalogs.acquire(ctx, who.ID, key, eng.Catalog(), func(ctx context.Context) (*catalogDB, error) {
		listed, err := eng.Listing(ctx, se.request("", engine.NewQueryID()))
		if err != nil {
			se.s.log.Warn("postgres catalog: policy could not decide; showing nothing", "err", err)
			listed = nil
		}
		return buildCatalog(ctx, listed, catalogInfo{database: se.db, user: se.who.ID, pid: 0, started: se.s.started,
			version:  "PostgreSQL " + ServerVersion + " on x86_64-pc-linux-gnu, Council Data Gateway " + se.s.cfg.Version + ", 64-bit",
			settings: se.settings})
	})
}

// start runs a query up to its first rows: in the catalog database if it
// reads only the catalog, else through the engine, admitted like every
// other door's query.
func (se *session) start(query string, toks []sqltext.Token) (*stream, error) {
	if toks == nil {
		var err error
		if toks, err = sqltext.Lex(query); err != nil {
			return nil, newError(stateSyntax, "%v", err)
		}
	}
	if mentionsCatalog(toks) {
		out, err := se.startCatalog(query, toks)
		if !errors.Is(err, errNotCatalog) {
			return out, err
		}
	}
	queryID := engine.NewQueryID()
	se.lastQueryID = queryID
	req := se.request(query, queryID)
	slot, err := se.s.cfg.Admission.Admit(context.Background(), se.who.ID, req.Arrived, se.timeout)
	if err != nil {
		se.logQuery(queryID, req.Arrived, 0, err)
		return nil, withID(err, queryID)
	}
	qctx, cancel := context.WithCancel(context.Background())
	if d := slot.Deadline(); !d.IsZero() {
		var stop context.CancelFunc
		qctx, stop = context.WithDeadline(qctx, d)
		c := cancel
		cancel = func() { stop(); c() }
	}
	se.setRunning(cancel)
	stopWatch := se.cr.watch(cancel)
	res, err := se.s.cfg.Engine.Query(qctx, req)
	stopWatch()
	se.setRunning(nil)
	if err != nil {
		cancel()
		slot.Release()
		se.logQuery(queryID, req.Arrived, 0, err)
		return nil, withID(err, queryID)
	}
	cols := columnsOf(res.Reader.Schema())
	if names := se.s.namer.names(qctx, query); len(names) == len(cols) {
		for i, n := range names {
			if n != "" {
				cols[i].name = n
			}
		}
	}
	out := &stream{cols: cols, rdr: res.Reader, res: res, slot: slot, cancel: cancel, queryID: queryID,
		logged: func(rows int64, err error) { se.logQuery(queryID, req.Arrived, rows, err) }}
	if d := slot.Deadline(); !d.IsZero() {
		// A portal left suspended holds its slot no longer than the
		// query's timeout.
		out.expiry = time.AfterFunc(time.Until(d), func() {
			out.cancel() // a sender waiting on the engine stops; then close waits for it
			out.close(context.DeadlineExceeded)
		})
	}
	return out, nil
}

// logQuery writes the access line of one query, as the HTTP door's: its
// id, requester, purpose, rows and time (never the SQL's values).
func (se *session) logQuery(queryID string, start time.Time, rows int64, err error) {
	// The engine logs each request it decides (its access line); this is
	// the door's own, at debug, by the error's class: its text may quote
	// a row's value or the query's literals.
	if err != nil {
		se.s.log.Debug("query refused or failed", "door", "postgres", "query_id", queryID, "requester", se.who.ID, "rows", rows,
			"elapsed_ms", time.Since(start).Milliseconds(), "code", gateway.ErrorCode(err))
	}
}

// withID keeps a query id beside an error, for the client's Detail.
type idError struct {
	err error
	id  string
}

func (e *idError) Error() string { return e.err.Error() }
func (e *idError) Unwrap() error { return e.err }

func withID(err error, id string) error { return &idError{err: err, id: id} }

func queryIDOf(err error) string {
	var ie *idError
	if errors.As(err, &ie) {
		return ie.id
	}
	return ""
}

func (se *session) startCatalog(query string, toks []sqltext.Token) (*stream, error) {
	ctx := context.Background()
	e, err := se.catalog(ctx)
	if err != nil {
		return nil, err
	}
	defer se.s.catalogs.release(e)
	sqlText, err := e.db.rewrite(ctx, query, toks)
	if err != nil {
		return nil, err
	}
	// A catalog query is a query like any other: admitted, bounded by the
	// query timeout, cancellable, and audited (action "catalog") before
	// its rows are released.
	queryID := engine.NewQueryID()
	se.lastQueryID = queryID
	req := se.request(query, queryID)
	slot, err := se.s.cfg.Admission.Admit(ctx, se.who.ID, req.Arrived, se.timeout)
	if err != nil {
		return nil, withID(err, queryID)
	}
	defer slot.Release()
	qctx, cancel := se.bounded(slot)
	defer cancel()
	se.setRunning(cancel)
	stopWatch := se.cr.watch(cancel)
	schema, recs, err := e.db.query(qctx, sqlText)
	stopWatch()
	se.setRunning(nil)
	var rows int64
	for _, r := range recs {
		rows += r.NumRows()
	}
	if aerr := se.s.cfg.Engine.AuditCatalogQuery(ctx, req, req.Arrived, rows, err); aerr != nil {
		for _, r := range recs {
			r.Release()
		}
		return nil, withID(gateway.Wrap(gateway.CodeInternal, aerr, "the audit log could not be written"), queryID)
	}
	se.logQuery(queryID, req.Arrived, rows, err)
	if err != nil {
		return nil, withID(err, queryID)
	}
	rdr, err := array.NewRecordReader(schema, recs)
	for _, r := range recs {
		r.Release()
	}
	if err != nil {
		return nil, err
	}
	return &stream{cols: columnsOf(schema), rdr: rdr, cancel: func() {}, queryID: queryID}, nil
}

// bounded is the context of one query: it ends at the slot's deadline
// (the query's timeout), or after query timeout's default where there is
// no admission.
func (se *session) bounded(slot *admission.Ticket) (context.Context, context.CancelFunc) {
	if d := slot.Deadline(); !d.IsZero() {
		return context.WithDeadline(context.Background(), d)
	}
	timeout := defaultCatalogTimeout
	if se.timeout > 0 {
		timeout = se.timeout
	}
	return context.WithTimeout(context.Background(), timeout)
}

// defaultCatalogTimeout bounds a catalog query or a Describe when no
// admission controller gives a deadline.
const defaultCatalogTimeout = 30 * time.Second

// close ends a stream: its Result is closed (audited, with err if the
// rows were not all read), its slot given back.
func (o *stream) close(err error) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.closed = true
	func() {
		if o.expiry != nil {
			o.expiry.Stop()
		}
		if o.cur != nil {
			o.cur.Release()
			o.cur = nil
		}
		if o.res != nil {
			if err != nil {
				o.res.Err(err)
			}
			o.res.Close()
		} else {
			o.rdr.Release()
		}
		o.cancel()
		o.slot.Release()
		if o.logged != nil {
			o.logged(o.sent, err)
		}
	}()
}

func (p *portal) close(err error) {
	if p.out != nil {
		if p.done {
			err = nil
		}
		p.out.close(err)
	}
}

// rowDescription describes cols, each in the format the client asked for.
func rowDescription(cols []column, formats []int16) *pgproto3.RowDescription {
	rd := &pgproto3.RowDescription{Fields: make([]pgproto3.FieldDescription, len(cols))}
	for i, c := range cols {
		rd.Fields[i] = pgproto3.FieldDescription{Name: []byte(c.name), DataTypeOID: c.oid, DataTypeSize: c.size,
			TypeModifier: c.mod, Format: formatOf(formats, i, c.oid)}
	}
	return rd
}

// formatOf is column i's format: binary only where asked and the door
// has a binary form of the type.
func formatOf(formats []int16, i int, oid uint32) int16 {
	f := int16(0)
	switch {
	case len(formats) == 1:
		f = formats[0]
	case i < len(formats):
		f = formats[i]
	}
	if f == 1 && binaryTypes[oid] {
		return 1
	}
	return 0
}

// flushAt is how much row data is buffered before it is written.
const flushAt = 256 << 10

// sendRows sends up to max rows (0: all) of p's stream as DataRows,
// encoded by the columns the client was told (wire). It returns how many
// were sent and whether rows remain.
func (se *session) sendRows(o *stream, wire []column, formats []int16, max int64, encode func([]byte, arrow.RecordBatch, int) ([]byte, error)) (int64, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return 0, false, gateway.Errorf(gateway.CodeTimeout, "the query's timeout passed while its portal or cursor waited to be read (query.timeout, statement_timeout)")
	}
	se.setRunning(o.cancel)
	defer se.setRunning(nil)
	defer se.cr.watch(o.cancel)()
	var n int64
	buf := se.buf[:0]
	write := func() error {
		if len(buf) == 0 {
			return nil
		}
		if err := se.flush(); err != nil {
			return err
		}
		if d := se.s.cfg.WriteTimeout; d > 0 {
			_ = se.conn.SetWriteDeadline(time.Now().Add(d))
		}
		_, err := se.conn.Write(buf)
		buf = buf[:0]
		return err
	}
	defer func() { se.buf = buf[:0] }()
	for max == 0 || n < max {
		if o.cur == nil || o.row >= int(o.cur.NumRows()) {
			if o.cur != nil {
				o.cur.Release()
				o.cur = nil
			}
			if !o.rdr.Next() {
				if err := o.rdr.Err(); err != nil {
					if o.res != nil {
						err = o.res.Err(err)
					}
					return n, false, err
				}
				return n, false, write()
			}
			o.cur, o.row = o.rdr.RecordBatch(), 0
			o.cur.Retain()
			if int(o.cur.NumCols()) != len(wire) {
				return n, false, newError(stateNotSupported, "the statement's result has %d columns, not the %d it was described with; prepare it again", o.cur.NumCols(), len(wire))
			}
		}
		for ; o.row < int(o.cur.NumRows()) && (max == 0 || n < max); o.row++ {
			var err error
			if buf, err = encode(buf, o.cur, o.row); err != nil {
				return n, false, err
			}
			n++
			o.sent++
			if len(buf) >= flushAt {
				if err := write(); err != nil {
					return n, false, withCancel(err)
				}
			}
		}
	}
	if err := write(); err != nil {
		return n, false, withCancel(err)
	}
	return n, true, nil
}

// withCancel marks a failed write: the client is gone or stopped reading.
func withCancel(err error) error {
	return gateway.Wrap(gateway.CodeCanceled, err, "the client stopped reading the result, so the query was cancelled")
}

// dataRow returns an encoder of DataRow messages for the columns.
func (se *session) dataRow(wire []column, formats []int16) func([]byte, arrow.RecordBatch, int) ([]byte, error) {
	fmts := make([]int16, len(wire))
	for i, c := range wire {
		fmts[i] = formatOf(formats, i, c.oid)
	}
	return func(buf []byte, rec arrow.RecordBatch, row int) ([]byte, error) {
		start := len(buf)
		buf = append(buf, 'D', 0, 0, 0, 0)
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(wire)))
		for c := range wire {
			col := rec.Column(c)
			if col.IsNull(row) {
				buf = binary.BigEndian.AppendUint32(buf, 0xffffffff)
				continue
			}
			at := len(buf)
			buf = append(buf, 0, 0, 0, 0)
			var err error
			if fmts[c] == 1 {
				if buf, err = appendBinary(buf, se.types, wire[c].oid, col, row); err != nil {
					return buf, newError(stateInvalidParamValue, "column %q: %v", wire[c].name, err)
				}
			} else {
				buf = appendText(buf, col, row)
			}
			binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
		}
		binary.BigEndian.PutUint32(buf[start+1:], uint32(len(buf)-start-1))
		return buf, nil
	}
}

// finish ends a stream that sent all its rows: the engine's warnings as
// notices, then CommandComplete.
func (se *session) finish(o *stream, tag string) {
	if o.res != nil {
		o.close(nil)
		for _, w := range o.res.Warnings() {
			se.be.Send(&pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING", Code: stateWarning, Message: w})
		}
	} else {
		o.close(nil)
	}
	se.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
}

// simpleQuery runs a Query message: every statement is checked before
// any runs, so a string with a write in it runs nothing.
func (se *session) simpleQuery(q string) {
	texts, err := sqltext.Split(q)
	if err != nil {
		se.fail(newError(stateSyntax, "%v", err), "")
		return
	}
	if len(texts) == 0 {
		se.be.Send(&pgproto3.EmptyQueryResponse{})
		return
	}
	stmts := make([]*statement, len(texts))
	for i, t := range texts {
		if stmts[i], err = classify(t); err != nil {
			se.fail(err, "")
			return
		}
	}
	for _, st := range stmts {
		if se.tx == 'E' && st.kind != kRollback && st.kind != kCommit {
			se.fail(newError(stateInFailedTx, "current transaction is aborted, commands ignored until end of transaction block"), "")
			return
		}
		if err := se.runSimple(st); err != nil {
			se.fail(err, queryIDOf(err))
			return
		}
		if err := se.flush(); err != nil {
			return
		}
	}
}

func (se *session) runSimple(st *statement) error {
	switch st.kind {
	case kQuery:
		o, err := se.start(st.query, st.toks)
		if err != nil {
			return err
		}
		se.be.Send(rowDescription(o.cols, nil))
		n, _, err := se.sendRows(o, o.cols, nil, 0, se.dataRow(o.cols, nil))
		if err != nil {
			o.close(err)
			return withID(err, o.queryID)
		}
		se.finish(o, "SELECT "+strconv.FormatInt(n, 10))
		return nil
	case kCopy:
		return se.copyOut(st)
	case kFetch:
		return se.fetch(st)
	}
	return se.utility(st, true)
}

// utility runs a statement the door answers itself and sends its
// CommandComplete (and a SHOW's row, with its description when simple).
func (se *session) utility(st *statement, describe bool) error {
	switch st.kind {
	case kSet:
		if st.tag == "RESET" || st.all && st.value == "" {
			if err := se.reset(st.name, st.all && st.tag == "RESET"); err != nil {
				return err
			}
		} else if err := se.set(st.name, st.value); err != nil {
			return err
		}
	case kShow:
		cols, rows, err := se.show(st)
		if err != nil {
			return err
		}
		if describe {
			se.be.Send(rowDescription(cols, nil))
		}
		for _, r := range rows {
			vals := make([][]byte, len(r))
			for i, v := range r {
				vals[i] = []byte(v)
			}
			se.be.Send(&pgproto3.DataRow{Values: vals})
		}
		se.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SHOW")})
		return nil
	case kBegin:
		if se.tx != 'I' {
			se.be.Send(&pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING", Code: stateActiveTx, Message: "there is already a transaction in progress"})
		}
		se.tx = 'T'
	case kCommit, kRollback:
		tag := st.tag
		if st.kind == kCommit && se.tx == 'E' {
			tag = "ROLLBACK"
		}
		se.tx = 'I'
		se.closePortals(true)
		se.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
		return nil
	case kNoop:
	case kDeclare:
		if _, ok := se.portals[st.name]; ok {
			return newError("42P03", "cursor %q already exists", st.name)
		}
		o, err := se.start(st.query, nil)
		if err != nil {
			return err
		}
		se.portals[st.name] = &portal{st: st, sql: st.query, out: o, wire: o.cols, hold: true}
	case kCloseCur:
		if st.all {
			for name, p := range se.portals {
				if p.hold {
					p.close(context.Canceled)
					delete(se.portals, name)
				}
			}
		} else {
			p, ok := se.portals[st.name]
			if !ok || !p.hold {
				return newError(stateInvalidCursor, "cursor %q does not exist", st.name)
			}
			p.close(context.Canceled)
			delete(se.portals, st.name)
		}
	case kDeallocate:
		if st.all {
			se.stmts = map[string]*prepared{}
		} else {
			if _, ok := se.stmts[st.name]; !ok {
				return newError(stateInvalidStatement, "prepared statement %q does not exist", st.name)
			}
			delete(se.stmts, st.name)
		}
	case kDiscard:
		se.closePortals(true)
		se.stmts = map[string]*prepared{}
	default:
		return newError(stateNotSupported, "%s cannot be run here", strings.Fields(st.text)[0])
	}
	se.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(st.tag)})
	return nil
}

// fetch answers FETCH and MOVE on a cursor.
func (se *session) fetch(st *statement) error {
	p, ok := se.portals[st.name]
	if !ok || !p.hold {
		return newError(stateInvalidCursor, "cursor %q does not exist", st.name)
	}
	count := st.count
	if st.all {
		count = 0
	} else if count == 0 {
		se.be.Send(rowDescription(p.wire, nil))
		se.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("FETCH 0")})
		return nil
	}
	enc := se.dataRow(p.wire, nil)
	verb := "FETCH "
	if st.move {
		verb = "MOVE "
		enc = func(buf []byte, _ arrow.RecordBatch, _ int) ([]byte, error) { return buf, nil }
	} else {
		se.be.Send(rowDescription(p.wire, nil))
	}
	if p.done {
		se.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(verb + "0")})
		return nil
	}
	n, more, err := se.sendRows(p.out, p.wire, nil, count, enc)
	if err != nil {
		p.close(err)
		delete(se.portals, st.name)
		return withID(err, p.out.queryID)
	}
	if !more {
		p.done = true
		p.out.close(nil)
		if p.out.res != nil {
			for _, w := range p.out.res.Warnings() {
				se.be.Send(&pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING", Code: stateWarning, Message: w})
			}
		}
	}
	se.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(verb + strconv.FormatInt(n, 10))})
	return nil
}

// extended handles one message of the extended query protocol.
func (se *session) extended(msg pgproto3.FrontendMessage) error {
	switch m := msg.(type) {
	case *pgproto3.Parse:
		texts, err := sqltext.Split(m.Query)
		switch {
		case err != nil:
			return newError(stateSyntax, "%v", err)
		case len(texts) > 1:
			return newError(stateSyntax, "cannot insert multiple commands into a prepared statement")
		}
		st := &statement{kind: kEmpty}
		if len(texts) == 1 {
			if st, err = classify(texts[0]); err != nil {
				return err
			}
		}
		p := &prepared{st: st}
		if st.kind == kQuery {
			if p.tmpl, err = sqltext.Params(m.Query, false); err != nil {
				return newError(stateSyntax, "%v", err)
			}
			p.oids = make([]uint32, p.tmpl.Count)
			copy(p.oids, m.ParameterOIDs)
		} else if t, err := sqltext.Params(m.Query, false); err == nil && t.Count > 0 {
			return newError(stateNotSupported, "only queries take parameters; %s does not", strings.ToUpper(strings.Fields(m.Query)[0]))
		}
		if m.Name != "" {
			if _, ok := se.stmts[m.Name]; ok {
				return newError("42P05", "prepared statement %q already exists", m.Name)
			}
		}
		se.stmts[m.Name] = p
		se.be.Send(&pgproto3.ParseComplete{})
	case *pgproto3.Describe:
		if m.ObjectType == 'S' {
			return se.describeStatement(m.Name)
		}
		return se.describePortal(m.Name)
	case *pgproto3.Bind:
		p, ok := se.stmts[m.PreparedStatement]
		if !ok {
			return newError(stateInvalidStatement, "prepared statement %q does not exist", m.PreparedStatement)
		}
		if old, ok := se.portals[m.DestinationPortal]; ok {
			if m.DestinationPortal != "" {
				return newError("42P03", "portal %q already exists", m.DestinationPortal)
			}
			old.close(context.Canceled)
		}
		pt := &portal{st: p.st, sql: p.st.text, formats: append([]int16(nil), m.ResultFormatCodes...), wire: p.cols}
		if p.st.kind == kQuery {
			if len(m.Parameters) != p.tmpl.Count {
				return newError(stateProtocolViolation, "bind message supplies %d parameters, but prepared statement %q requires %d", len(m.Parameters), m.PreparedStatement, p.tmpl.Count)
			}
			lits := make([]string, len(m.Parameters))
			for i, v := range m.Parameters {
				f := int16(0)
				switch {
				case len(m.ParameterFormatCodes) == 1:
					f = m.ParameterFormatCodes[0]
				case i < len(m.ParameterFormatCodes):
					f = m.ParameterFormatCodes[i]
				}
				var err error
				if lits[i], err = paramLiteral(se.types, i+1, p.oids[i], f, v); err != nil {
					return err
				}
			}
			pt.sql = p.tmpl.Substitute(lits)
		}
		se.portals[m.DestinationPortal] = pt
		se.be.Send(&pgproto3.BindComplete{})
	case *pgproto3.Execute:
		return se.execute(m.Portal, int64(m.MaxRows))
	case *pgproto3.Close:
		if m.ObjectType == 'S' {
			delete(se.stmts, m.Name)
		} else if p, ok := se.portals[m.Name]; ok {
			p.close(context.Canceled)
			delete(se.portals, m.Name)
		}
		se.be.Send(&pgproto3.CloseComplete{})
	}
	return nil
}

// describeStatement answers Describe of a prepared statement: its
// parameters' types and its columns, inferred without running it.
func (se *session) describeStatement(name string) error {
	p, ok := se.stmts[name]
	if !ok {
		return newError(stateInvalidStatement, "prepared statement %q does not exist", name)
	}
	if p.st.kind != kQuery {
		se.be.Send(&pgproto3.ParameterDescription{ParameterOIDs: []uint32{}})
		if p.st.kind == kShow {
			cols, _, err := se.show(p.st)
			if err != nil {
				return err
			}
			se.be.Send(rowDescription(cols, nil))
			return nil
		}
		se.be.Send(&pgproto3.NoData{})
		return nil
	}
	ctx, cancel := se.bounded(nil)
	defer cancel()
	se.setRunning(cancel)
	defer se.setRunning(nil)
	e, err := se.catalog(ctx)
	if err != nil {
		return err
	}
	defer se.s.catalogs.release(e)
	// Only the statement, parsed and checked as a catalog query is, is
	// prepared: DuckDB's prepare runs every statement before the last.
	q, err := e.db.rewrite(ctx, p.st.text, p.st.toks)
	if errors.Is(err, errNotCatalog) {
		q, err = e.db.checked(ctx, p.st.text)
	}
	if err != nil {
		var ge *gateway.Error
		if errors.As(err, &ge) {
			return err
		}
		return gateway.Wrap(gateway.CodeBadRequest, err, "cannot describe the statement: %s", duckMessage(err))
	}
	oids, cols, err := e.db.describe(ctx, q)
	if err != nil {
		return gateway.Wrap(gateway.CodeBadRequest, err, "cannot describe the statement: %s", duckMessage(err))
	}
	for i := range p.oids {
		if p.oids[i] == 0 && i < len(oids) {
			p.oids[i] = oids[i]
		}
		if p.oids[i] == 0 {
			p.oids[i] = oidText
		}
	}
	p.cols = cols
	se.be.Send(&pgproto3.ParameterDescription{ParameterOIDs: p.oids})
	if len(cols) == 0 {
		se.be.Send(&pgproto3.NoData{})
	} else {
		se.be.Send(rowDescription(cols, nil))
	}
	return nil
}

// describePortal starts a bound query (so its columns are exact) and
// describes them in the formats the Bind asked for.
func (se *session) describePortal(name string) error {
	pt, ok := se.portals[name]
	if !ok {
		return newError(stateInvalidCursor, "portal %q does not exist", name)
	}
	if pt.st.kind == kShow {
		cols, _, err := se.show(pt.st)
		if err != nil {
			return err
		}
		se.be.Send(rowDescription(cols, pt.formats))
		pt.told = true
		return nil
	}
	if pt.st.kind != kQuery {
		se.be.Send(&pgproto3.NoData{})
		pt.told = true
		return nil
	}
	if err := se.startPortal(pt); err != nil {
		return err
	}
	pt.wire, pt.told = pt.out.cols, true
	se.be.Send(rowDescription(pt.wire, pt.formats))
	return nil
}

func (se *session) startPortal(pt *portal) error {
	if pt.out != nil {
		return nil
	}
	o, err := se.start(pt.sql, nil)
	if err != nil {
		return err
	}
	pt.out = o
	if pt.wire == nil {
		pt.wire = o.cols
	}
	return nil
}

// execute runs a portal, sending at most max rows (0: all).
func (se *session) execute(name string, max int64) error {
	pt, ok := se.portals[name]
	if !ok {
		return newError(stateInvalidCursor, "portal %q does not exist", name)
	}
	switch pt.st.kind {
	case kQuery:
	case kEmpty:
		se.be.Send(&pgproto3.EmptyQueryResponse{})
		return nil
	case kShow:
		return se.utility(pt.st, false)
	case kCopy, kFetch:
		return newError(stateNotSupported, "%s is only accepted as a simple query", strings.ToUpper(strings.Fields(pt.st.text)[0]))
	default:
		return se.utility(pt.st, false)
	}
	if pt.done {
		se.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")})
		return nil
	}
	if err := se.startPortal(pt); err != nil {
		return err
	}
	_, more, err := se.sendRows(pt.out, pt.wire, pt.formats, max, se.dataRow(pt.wire, pt.formats))
	if err != nil {
		pt.close(err)
		delete(se.portals, name)
		return withID(err, pt.out.queryID)
	}
	if more {
		se.be.Send(&pgproto3.PortalSuspended{})
		return nil
	}
	pt.done = true
	se.finish(pt.out, "SELECT "+strconv.FormatInt(pt.out.sent, 10))
	return nil
}
