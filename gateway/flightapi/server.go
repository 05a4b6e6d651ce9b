package flightapi

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/admission"
	"github.com/councildata/gateway/gateway/auth"
	"github.com/councildata/gateway/gateway/engine"
)

// Metadata keys a Flight SQL client sends besides authorization.
const (
	PurposeHeader = "x-gateway-purpose"
	CaseRefHeader = "x-gateway-case-ref"
	// CoverageHeader: "available" (the default) or "all"; see
	// engine.Request.Coverage.
	CoverageHeader = "x-gateway-coverage"
	// ExcludedHeader is sent, in the response header of the call that plans
	// a query and in the DoGet's trailers, once per council a standard
	// dataset query left out by policy (gateway.Exclusion.HeaderValue).
	ExcludedHeader = "x-gateway-excluded"
	// PartialHeader "true": a council whose store fails is left out of the
	// answer and named (FailedHeader) rather than failing the query.
	PartialHeader = "x-gateway-partial"
	// FailedHeader is sent like ExcludedHeader, once per council a partial
	// answer left out because its store failed.
	FailedHeader = "x-gateway-failed"
)

// sessionPrefix marks a bearer token issued by the handshake, so it is
// never mistaken for an API key or a JWT.
const sessionPrefix = "gws_"

// Defaults for Config.
const (
	DefaultTicketTTL  = 2 * time.Minute
	DefaultSessionTTL = time.Hour
)

// Config is what New needs.
type Config struct {
	Engine *engine.Engine
	Auth   *auth.Authenticator
	// Key signs tickets, prepared-statement handles and session tokens.
	// Empty: a random key, so none of them survive a restart (what they
	// refer to lives in this process anyway).
	Key []byte
	// TicketTTL bounds the time between planning a statement
	// (GetFlightInfo) and fetching it (DoGet). Note that the query's own
	// timeout runs from planning too.
	TicketTTL time.Duration
	// SessionTTL is the lifetime of the bearer token the handshake returns.
	SessionTTL time.Duration
	// TLS, if not nil, serves over TLS.
	TLS *tls.Config
	// Version is reported in GetSqlInfo.
	Version string
	// Admission, if set, admits each statement before the engine plans
	// it; its slot is held until the query's Result is closed. Nil admits
	// every statement at once.
	Admission *admission.Controller
	// WriteTimeout bounds how long a DoGet's client may take to take each
	// batch of its result; one that takes none for that long has its
	// query cancelled. 0 for no limit.
	WriteTimeout time.Duration
	Log          *slog.Logger
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Server is the Flight SQL server. Create it with New.
type Server struct {
	flightsql.BaseServer
	cfg  Config
	sign signer
	log  *slog.Logger
	grpc *grpc.Server
	mem  memory.Allocator

	mu       sync.Mutex
	sessions map[string]sessionEntry       // by session id
	tickets  map[string]*pendingQuery      // planned, not yet fetched
	running  map[string]context.CancelFunc // being fetched, by ticket id
	prepared map[string]*preparedStatement
	closed   bool
}

// New builds the server; Serve starts it.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil || cfg.Auth == nil {
		return nil, errors.New("flightapi: Engine and Auth are required")
	}
	if cfg.TicketTTL <= 0 {
		cfg.TicketTTL = DefaultTicketTTL
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	sign, err := newSigner(cfg.Key)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, sign: sign, log: cfg.Log, mem: memory.DefaultAllocator,
		sessions: map[string]sessionEntry{}, tickets: map[string]*pendingQuery{},
		running: map[string]context.CancelFunc{}, prepared: map[string]*preparedStatement{}}
	s.Alloc = s.mem
	if err := s.registerSqlInfo(); err != nil {
		return nil, err
	}
	opts := []grpc.ServerOption{
		// Traces: a span per call, the caller's traceparent honoured.
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.ChainUnaryInterceptor(s.unaryAuth),
		grpc.ChainStreamInterceptor(s.streamAuth),
	}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	flight.RegisterFlightServiceServer(s.grpc, flightsql.NewFlightServerWithAllocator(s, s.mem))
	return s, nil
}

// LoadTLS reads a PEM certificate and key for Config.TLS.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate and key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Serve serves on ln until Stop; it returns nil after a Stop.
func (s *Server) Serve(ln net.Listener) error {
	err := s.grpc.Serve(ln)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop stops accepting calls, lets running calls finish until ctx ends,
// then cuts them off, and closes every planned query nobody fetched.
func (s *Server) Stop(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for _, cancel := range s.running {
			cancel()
		}
		s.mu.Unlock()
		s.grpc.Stop()
		<-done
	}
	s.mu.Lock()
	s.closed = true
	pending := s.tickets
	s.tickets = map[string]*pendingQuery{}
	s.mu.Unlock()
	for _, p := range pending {
		p.close()
	}
}

// --- authentication ---------------------------------------------------

type callInfo struct {
	requester *gateway.Requester
	remote    string
}

type callKey struct{}

func callFrom(ctx context.Context) callInfo {
	c, _ := ctx.Value(callKey{}).(callInfo)
	return c
}

func firstMD(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return strings.TrimSpace(v[0])
	}
	return ""
}

// authenticate checks the call's credentials. On the handshake, basic
// credentials (any user name, the API key as password) are exchanged for
// a session token returned in the authorization header.
func (s *Server) authenticate(ctx context.Context, method string, setHeader func(metadata.MD) error) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	header := firstMD(md, "authorization")
	var who *gateway.Requester
	var err error
	if user, password, ok := auth.BasicToken(header); ok {
		if !strings.HasSuffix(method, "/Handshake") {
			return nil, status.Error(codes.Unauthenticated, "basic credentials are only accepted in the handshake; send the bearer token it returns, or Authorization: Bearer <API key or token>")
		}
		_ = user // the key identifies the requester; the user name is not checked
		if who, err = s.cfg.Auth.Authenticate(ctx, password); err != nil {
			return nil, toStatus(s.log, err, "")
		}
		token := s.newSession(who)
		if err := setHeader(metadata.Pairs("authorization", "Bearer "+token)); err != nil {
			return nil, status.Error(codes.Internal, "could not return the session token")
		}
	} else {
		bearer := auth.BearerToken(header)
		if strings.HasPrefix(bearer, sessionPrefix) {
			who, err = s.session(bearer)
		} else {
			who, err = s.cfg.Auth.Authenticate(ctx, bearer)
		}
		if err != nil {
			return nil, toStatus(s.log, err, "")
		}
	}
	ci := callInfo{requester: who}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		ci.remote = p.Addr.String()
	}
	return context.WithValue(gateway.WithRequester(ctx, who), callKey{}, ci), nil
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.authenticate(ctx, info.FullMethod, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) })
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a authedStream) Context() context.Context { return a.ctx }

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authenticate(ss.Context(), info.FullMethod, ss.SetHeader)
	if err != nil {
		return err
	}
	return handler(srv, authedStream{ServerStream: ss, ctx: ctx})
}

type sessionEntry struct {
	who *gateway.Requester
	exp time.Time
}

// newSession issues a session token for who: opaque, signed, expiring,
// bound to the requester; never the key itself.
func (s *Server) newSession(who *gateway.Requester) string {
	now := s.cfg.Now()
	tok, id := s.sign.issue(kindSession, who.ID, now.Add(s.cfg.SessionTTL))
	s.mu.Lock()
	s.sessions[id] = sessionEntry{who: who, exp: now.Add(s.cfg.SessionTTL)}
	s.sweepLocked(now)
	s.mu.Unlock()
	return sessionPrefix + base64.RawURLEncoding.EncodeToString(tok)
}

func (s *Server) session(token string) (*gateway.Requester, error) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(token, sessionPrefix))
	unknown := gateway.Errorf(gateway.CodeUnauthorized, "the session token is not valid; authenticate again")
	if err != nil {
		return nil, unknown
	}
	id, ok := parseID(kindSession, raw)
	if !ok {
		return nil, unknown
	}
	s.mu.Lock()
	who := s.sessions[id].who
	s.mu.Unlock()
	if who == nil {
		return nil, unknown
	}
	if _, err := s.sign.verify(kindSession, raw, who.ID, s.cfg.Now()); err != nil {
		if errors.Is(err, errExpiredToken) {
			s.mu.Lock()
			delete(s.sessions, id)
			s.mu.Unlock()
			return nil, gateway.Errorf(gateway.CodeUnauthorized, "the session token has expired; authenticate again")
		}
		return nil, unknown
	}
	return who, nil
}

// sweepLocked drops expired sessions and idle prepared statements.
func (s *Server) sweepLocked(now time.Time) {
	for id, e := range s.sessions {
		if !now.Before(e.exp) {
			delete(s.sessions, id)
		}
	}
	for id, p := range s.prepared {
		if now.Sub(p.lastUsed) > s.cfg.SessionTTL {
			delete(s.prepared, id)
		}
	}
}

// request is the engine request for a call: who, from where, for what.
func (s *Server) request(ctx context.Context, sqlText, queryID string) engine.Request {
	md, _ := metadata.FromIncomingContext(ctx)
	ci := callFrom(ctx)
	return engine.Request{SQL: sqlText, QueryID: queryID, Requester: ci.requester,
		Purpose: firstMD(md, PurposeHeader), CaseRef: firstMD(md, CaseRefHeader), Coverage: firstMD(md, CoverageHeader),
		Partial: strings.EqualFold(firstMD(md, PartialHeader), "true"),
		Door:    "flight", RemoteAddr: ci.remote}
}
