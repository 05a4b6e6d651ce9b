package pgwire

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/admission"
	"github.com/councildata/gateway/gateway/auth"
	"github.com/councildata/gateway/gateway/engine"
)

// Defaults for Config.
const (
	DefaultMaxConnections             = 256
	DefaultMaxConnectionsPerRequester = 64
	DefaultIdleTimeout                = time.Hour
	DefaultStartupTimeout             = 10 * time.Second
	// Connections that have not signed in yet, in all and from one other
	// host: past these a new one is closed at once. They hold no
	// session's place (max_connections counts signed-in sessions), so
	// sockets that never send a startup packet lock nobody out below
	// these bounds, each lasting DefaultStartupTimeout at most.
	maxPending      = 4096
	maxPendingPerIP = 256
	// DefaultCatalogTTL is how long a requester's catalog database is
	// reused before it is built again from the policy's listing.
	DefaultCatalogTTL = 30 * time.Second
	// maxMessage bounds one protocol message (a query's text, a Bind's
	// parameters): 16 MiB.
	maxMessage = 16 << 20
)

// ServerVersion is the PostgreSQL version the door reports: drivers pick
// their catalog queries by it, and these are the ones answered.
const ServerVersion = "15.0"

// Config is what New needs.
type Config struct {
	Engine *engine.Engine
	Auth   *auth.Authenticator
	// Admission, if set, admits each query as on the other doors; its slot
	// is held until the query's rows are all sent or its portal closed.
	Admission *admission.Controller
	// TLS, if set, is offered to clients that ask (sslmode=require).
	TLS *tls.Config
	// AllowInsecureRemote accepts clients on other hosts without TLS, so
	// their API keys cross the network in the clear. Without it (and
	// without TLS) only loopback clients are served.
	AllowInsecureRemote bool
	// MaxConnections bounds open connections; one more is refused with
	// SQLSTATE 53300.
	MaxConnections int
	// MaxConnectionsPerRequester bounds one requester's open connections
	// (default 64), so one key cannot take every connection.
	MaxConnectionsPerRequester int
	// IdleTimeout closes a session that sends nothing for that long
	// (default 1h; PostgreSQL's idle_session_timeout, SQLSTATE 57P05).
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to a client; one that stops reading
	// has its query cancelled. 0 for no limit.
	WriteTimeout time.Duration
	// Version is the gateway's, reported in version() and server_version.
	Version string
	Log     *slog.Logger
}

// Server is the PostgreSQL door. Create it with New, then Serve.
type Server struct {
	cfg     Config
	log     *slog.Logger
	started time.Time

	mu       sync.Mutex
	ln       []net.Listener
	sessions map[uint32]*session // by process id
	closed   bool
	conns    int            // signed-in sessions
	byWho    map[string]int // signed-in sessions per requester
	pending  int            // connections not signed in yet
	pendIP   map[string]int // the same, per client address
	wg       sync.WaitGroup

	catalogs catalogCache

	namer columnNamer // names result columns as PostgreSQL would
}

// New checks cfg and returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil || cfg.Auth == nil {
		return nil, errors.New("pgwire: Engine and Auth are required")
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxConnectionsPerRequester <= 0 {
		cfg.MaxConnectionsPerRequester = DefaultMaxConnectionsPerRequester
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Server{cfg: cfg, log: cfg.Log, started: time.Now(), sessions: map[uint32]*session{},
		byWho: map[string]int{}, pendIP: map[string]int{},
		catalogs: catalogCache{entries: map[string]*catalogEntry{}, ttl: DefaultCatalogTTL}}, nil
}

// Serve accepts connections on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.ln = append(s.ln, ln)
	s.mu.Unlock()
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(conn)
		}()
	}
}

// Close stops accepting, cancels every session's query and closes the
// connections; it waits for them until ctx ends.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for _, ln := range s.ln {
		ln.Close()
	}
	for _, se := range s.sessions {
		se.shutdown()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	s.catalogs.closeAll()
	return nil
}

// loopback says whether a connection comes from this machine.
func loopback(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}

// fatal sends a FATAL error during startup.
func fatal(be *pgproto3.Backend, state, msg string) {
	be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: state, Message: msg})
	_ = be.Flush()
}

func (s *Server) serveConn(conn net.Conn) {
	defer conn.Close()
	// A bug met by one client's session ends that session, never the
	// gateway.
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("postgres: session failed", "remote", conn.RemoteAddr().String(), "panic", r, "stack", string(debug.Stack()))
		}
	}()
	ip := conn.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	s.mu.Lock()
	if s.closed || s.pending >= maxPending || !loopback(conn.RemoteAddr()) && s.pendIP[ip] >= maxPendingPerIP {
		s.mu.Unlock()
		return
	}
	s.pending++
	s.pendIP[ip]++
	s.mu.Unlock()
	signedIn := false
	unpend := func() {
		if !signedIn {
			signedIn = true
			s.mu.Lock()
			s.pending--
			if s.pendIP[ip]--; s.pendIP[ip] <= 0 {
				delete(s.pendIP, ip)
			}
			s.mu.Unlock()
		}
	}
	defer unpend()
	_ = conn.SetDeadline(time.Now().Add(DefaultStartupTimeout))
	be := pgproto3.NewBackend(conn, conn)
	be.SetMaxBodyLen(maxMessage)
	secure := false
	var startup *pgproto3.StartupMessage
	for startup == nil {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			s.log.Debug("postgres: startup failed", "remote", conn.RemoteAddr().String(), "err", err)
			return
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if s.cfg.TLS == nil || secure {
				if _, err := conn.Write([]byte{'N'}); err != nil {
					return
				}
				continue
			}
			if _, err := conn.Write([]byte{'S'}); err != nil {
				return
			}
			tc := tls.Server(conn, s.cfg.TLS)
			if err := tc.Handshake(); err != nil {
				s.log.Info("postgres: TLS handshake failed", "remote", conn.RemoteAddr().String(), "err", err)
				return
			}
			conn, secure = tc, true
			be = pgproto3.NewBackend(conn, conn)
			be.SetMaxBodyLen(maxMessage)
		case *pgproto3.GSSEncRequest:
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return
			}
		case *pgproto3.CancelRequest:
			s.cancel(m.ProcessID, m.SecretKey)
			return
		case *pgproto3.StartupMessage:
			startup = m
		default:
			return
		}
	}
	if !secure && !loopback(conn.RemoteAddr()) && !s.cfg.AllowInsecureRemote {
		msg := "connections from other hosts must use TLS (sslmode=require); the gateway has no server.postgres_tls certificate configured"
		if s.cfg.TLS != nil {
			msg = "connections from other hosts must use TLS: connect with sslmode=require"
		}
		fatal(be, stateInvalidAuth, msg)
		return
	}
	params := startup.Parameters
	// The password: an API key or a JWT, sent in clear text (over TLS or
	// loopback only). SCRAM would need each key's secret on the gateway,
	// which keeps only their SHA-256 hashes.
	be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := be.Flush(); err != nil {
		return
	}
	if err := be.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return
	}
	msg, err := be.Receive()
	if err != nil {
		return
	}
	pw, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		fatal(be, stateProtocolViolation, "expected a password message")
		return
	}
	ctx := context.Background()
	who, err := s.cfg.Auth.Authenticate(ctx, strings.TrimSpace(pw.Password))
	if err != nil {
		msg := "password authentication failed: the password must be an API key or a token the gateway accepts"
		var ge *gateway.Error
		if errors.As(err, &ge) && ge.Code == gateway.CodeUnauthorized {
			msg = "password authentication failed: " + ge.Message
			msg = strings.ReplaceAll(msg, "send Authorization: Bearer <key>", "send the API key as the password")
		}
		fatal(be, stateInvalidPassword, msg)
		return
	}
	unpend()
	s.mu.Lock()
	over, overWho := s.conns >= s.cfg.MaxConnections, s.byWho[who.ID] >= s.cfg.MaxConnectionsPerRequester
	if !over && !overWho {
		s.conns++
		s.byWho[who.ID]++
	}
	s.mu.Unlock()
	switch {
	case over:
		fatal(be, stateTooManyConns, fmt.Sprintf("sorry, too many clients already: the PostgreSQL door serves at most %d connections (server.postgres_max_connections)", s.cfg.MaxConnections))
		return
	case overWho:
		fatal(be, stateTooManyConns, fmt.Sprintf("too many connections for %s: one requester may have %d open (server.postgres_max_connections_per_requester)", who.ID, s.cfg.MaxConnectionsPerRequester))
		return
	}
	defer func() {
		s.mu.Lock()
		s.conns--
		if s.byWho[who.ID]--; s.byWho[who.ID] <= 0 {
			delete(s.byWho, who.ID)
		}
		s.mu.Unlock()
	}()
	_ = conn.SetDeadline(time.Time{})
	// From here the backend reads through a connReader, which can read
	// ahead while a query runs.
	cr := &connReader{conn: conn}
	be = pgproto3.NewBackend(cr, conn)
	be.SetMaxBodyLen(maxMessage)
	se := s.newSession(conn, be, who, params)
	if se == nil {
		fatal(be, stateCannotConnectNow, "the gateway is shutting down")
		return
	}
	se.cr = cr
	defer s.endSession(se)
	se.run()
}

func (s *Server) newSession(conn net.Conn, be *pgproto3.Backend, who *gateway.Requester, params map[string]string) *session {
	var key [8]byte
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	var pid uint32
	for {
		_, _ = rand.Read(key[:])
		pid = binary.BigEndian.Uint32(key[:4])&0x7fffffff | 1
		if s.sessions[pid] == nil {
			break
		}
	}
	se := newSession(s, conn, be, who, params, pid, append([]byte(nil), key[4:]...))
	s.sessions[pid] = se
	return se
}

func (s *Server) endSession(se *session) {
	se.closeAll()
	s.mu.Lock()
	delete(s.sessions, se.pid)
	s.mu.Unlock()
}

// cancel handles a CancelRequest: the session's running query, if the
// key matches, is cancelled as if its client had gone away.
func (s *Server) cancel(pid uint32, secret []byte) {
	s.mu.Lock()
	se := s.sessions[pid]
	s.mu.Unlock()
	if se == nil || subtle.ConstantTimeCompare(se.secret, secret) != 1 {
		return
	}
	se.cancelRunning()
}
