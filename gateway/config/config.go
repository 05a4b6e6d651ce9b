// Package config reads the gateway's YAML file into plain structs, expands
// ${ENV} references so secrets stay out of the file, and validates it. Every
// error names the file, the part of the file (source, dataset, requester) and
// the field. Nothing else in the gateway reads files or the environment.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole file.
type Config struct {
	// Dir is the directory of the config file; relative paths in the file
	// are resolved against it.
	Dir string `yaml:"-"`
	// File is the path the config was read from.
	File string `yaml:"-"`

	Server     Server      `yaml:"server"`
	Query      Query       `yaml:"query"`
	Sources    []Source    `yaml:"sources"`
	Datasets   []Dataset   `yaml:"standard_datasets"`
	Requesters []Requester `yaml:"requesters"`
	Auth       Auth        `yaml:"auth"`
	Policy     Policy      `yaml:"policy"`
	Audit      Audit       `yaml:"audit"`
}

// Auth configures bearer tokens other than API keys.
type Auth struct {
	// JWT, when set, accepts OIDC/JWT bearer tokens.
	JWT *JWT `yaml:"jwt"`
	// OIDC, when set, signs the web console in through an OpenID Connect
	// provider (authorization code with PKCE); it needs JWT, which
	// verifies the token the console's session then presents.
	OIDC *OIDC `yaml:"oidc"`
}

// OIDC configures the console's sign-in through an OpenID Connect
// provider.
type OIDC struct {
	// Issuer is the provider's issuer URL; its discovery document is
	// read from <issuer>/.well-known/openid-configuration at the first
	// sign-in.
	Issuer string `yaml:"issuer"`
	// ClientID is the console's client at the provider. ClientSecret (or
	// ClientSecretFile, resolved against the config dir) is its secret;
	// neither for a public client, which PKCE alone protects.
	ClientID         string `yaml:"client_id"`
	ClientSecret     string `yaml:"client_secret"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// RedirectURL is where the provider sends the browser back: the
	// gateway's own address followed by /ui/oidc/callback, as registered
	// at the provider.
	RedirectURL string `yaml:"redirect_url"`
	// Scopes asked for (default openid, profile, email); openid is
	// always among them.
	Scopes []string `yaml:"scopes"`
	// Credential is the token the console's session presents to the API
	// (verified by auth.jwt): id_token (the default; its audience is the
	// client id) or access_token.
	Credential string `yaml:"credential"`
	// Name labels the sign-in button (default "your organisation's
	// sign-in").
	Name string `yaml:"name"`
}

// JWT configures the verification of JWT bearer tokens.
type JWT struct {
	// JWKSFile or JWKSURL gives the signing keys (exactly one).
	JWKSFile string `yaml:"jwks_file"`
	JWKSURL  string `yaml:"jwks_url"`
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// Algorithms allowed (default RS256, ES256); "none" is never allowed.
	Algorithms []string `yaml:"algorithms"`
	// Leeway tolerated on exp and nbf (default 30s).
	Leeway Duration `yaml:"leeway"`
	// Claims names the claims that hold the requester's fields.
	Claims JWTClaims `yaml:"claims"`
}

// JWTClaims maps token claims onto requester fields.
type JWTClaims struct {
	ID           string `yaml:"id"`           // default sub
	Organisation string `yaml:"organisation"` // default org
	Roles        string `yaml:"roles"`        // default roles
	Purposes     string `yaml:"purposes"`     // default purposes
}

// Policy configures the Open Policy Agent decision.
type Policy struct {
	// Dir holds the Rego modules and agreements/ (resolved against the
	// config file's directory).
	Dir string `yaml:"dir"`
	// HashSalt keys the salted-hash mask; keep it secret (${ENV}). Give
	// it or HashSaltFile, not both.
	HashSalt string `yaml:"hash_salt"`
	// HashSaltFile is a file holding the salt (resolved against the
	// config dir).
	HashSaltFile string `yaml:"hash_salt_file"`
	// Timeout bounds one decision (default 100ms); a timeout denies.
	Timeout Duration `yaml:"timeout"`
	// Disabled turns policy off: every authenticated requester reads
	// everything. For development only; logged loudly.
	Disabled bool `yaml:"disabled"`
	// Bundle, when set, loads the policy from a bundle server instead of
	// Dir, polled for new revisions, so every replica enforces the same.
	Bundle *PolicyBundle `yaml:"bundle"`
}

// PolicyBundle is where the policy bundle is served.
type PolicyBundle struct {
	// URL is the bundle (a gzipped tar in OPA's bundle layout, as
	// `gateway policy bundle` writes it): http(s).
	URL string `yaml:"url"`
	// Interval is how often the bundle is asked for again (default 30s);
	// an unchanged one (ETag) costs a 304.
	Interval Duration `yaml:"interval"`
	// Token, if set, is sent as Authorization: Bearer (use ${ENV}).
	Token string `yaml:"token"`
}

// Audit configures the audit log.
type Audit struct {
	// File is the JSON-lines audit log (default audit/audit.jsonl beside
	// the config file).
	File string `yaml:"file"`
	// HMACKeyFile holds the key of every record's hash. Like SigningKeyFile
	// it must not be in the log's directory.
	HMACKeyFile string `yaml:"hmac_key_file"`
	// SigningKeyFile holds the Ed25519 private key (PKCS #8 PEM) that signs
	// the log's head.
	SigningKeyFile string `yaml:"signing_key_file"`
}

// Server holds the listen addresses.
type Server struct {
	HTTP string `yaml:"http"`
	// HTTPTLS, when set, serves the HTTP door (API and console) over TLS
	// with this certificate and key (PEM files, resolved against the
	// config dir).
	HTTPTLS *TLS `yaml:"http_tls"`
	// PublicURL is the address browsers and clients reach the HTTP door
	// at, when a proxy in front of it answers for it
	// (https://gateway.example.gov.uk): with https, the console's cookies
	// are Secure and its session cookie __Host- prefixed, as with
	// HTTPTLS; a console form must come from this origin.
	PublicURL string `yaml:"public_url"`
	Flight    string `yaml:"flight"`
	// FlightTLS, when set, serves Flight SQL over TLS with this
	// certificate and key (PEM files, resolved against the config dir).
	FlightTLS *TLS `yaml:"flight_tls"`
	// FlightTicketTTL is how long a Flight SQL ticket (a planned query
	// waiting to be fetched) stays valid; default 2m.
	FlightTicketTTL Duration `yaml:"flight_ticket_ttl"`
	// FlightSessionTTL is how long a bearer token returned by the Flight
	// SQL handshake (basic auth) stays valid; default 1h.
	FlightSessionTTL Duration `yaml:"flight_session_ttl"`
	// FlightTicketKeyFile holds the key that signs Flight SQL tickets,
	// prepared-statement handles and session tokens.
	FlightTicketKeyFile string `yaml:"flight_ticket_key_file"`
	// Admin is the admin listener's address (default 127.0.0.1:9090):
	// /metrics and /debug/pprof, for operators, never on a query door;
	// "off" serves none.
	Admin string `yaml:"admin"`
	// Postgres is the PostgreSQL door's listen address (default
	// 127.0.0.1:5433); "off" serves no PostgreSQL door.
	Postgres string `yaml:"postgres"`
	// PostgresTLS, when set, lets PostgreSQL clients connect with
	// sslmode=require (certificate and key PEM files, resolved against the
	// config dir). Without it only loopback clients are served, unless
	// PostgresAllowInsecureRemote says otherwise.
	PostgresTLS *TLS `yaml:"postgres_tls"`
	// PostgresAllowInsecureRemote serves PostgreSQL clients on other hosts
	// without TLS: their API keys cross the network in the clear.
	PostgresAllowInsecureRemote bool `yaml:"postgres_allow_insecure_remote"`
	// PostgresMaxConnections bounds the PostgreSQL door's open
	// connections (default 256).
	PostgresMaxConnections int `yaml:"postgres_max_connections"`
	// PostgresMaxConnectionsPerRequester bounds one requester's
	// connections (default 64).
	PostgresMaxConnectionsPerRequester int `yaml:"postgres_max_connections_per_requester"`
	// PostgresIdleTimeout closes a PostgreSQL session that sends nothing
	// for that long (default 1h).
	PostgresIdleTimeout Duration `yaml:"postgres_idle_timeout"`
	// DrainTimeout is how long, once the gateway is told to stop
	// (SIGTERM), its running queries have to finish before they are
	// cancelled (default 30s); meanwhile it takes no new ones.
	DrainTimeout Duration `yaml:"drain_timeout"`
	// MaxBodyBytes caps a request body; larger ones get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// WriteTimeout is how long a client may take to read what is written
	// to it: a response, or each batch of a streamed result, on both
	// doors. A client that reads nothing for that long has its query
	// cancelled (default 30s).
	WriteTimeout Duration `yaml:"write_timeout"`
	// ReadTimeout bounds reading an HTTP request, body included (default
	// 30s); ReadHeaderTimeout its headers (default 10s); IdleTimeout how
	// long a kept-alive HTTP connection may wait for its next request
	// (default 2m).
	ReadTimeout       Duration `yaml:"read_timeout"`
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
}

// TLS names a certificate and its private key, PEM-encoded.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Query holds the engine's limits.
type Query struct {
	// Timeout is the default and the largest timeout of a query.
	Timeout Duration `yaml:"timeout"`
	// MemoryLimit is DuckDB's memory limit for one query, e.g. "1GB".
	MemoryLimit string `yaml:"memory_limit"`
	// Threads is DuckDB's thread count for one query.
	Threads int `yaml:"threads"`
	// TempDir is where DuckDB may spill; the gateway owns it.
	TempDir string `yaml:"temp_dir"`
	// MaxConcurrent caps queries running at once; more wait.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxQueued caps queries waiting for one of the MaxConcurrent slots
	// (default 4 × MaxConcurrent); more are refused with 503 and
	// Retry-After.
	MaxQueued int `yaml:"max_queued"`
	// MaxQueueWait is the longest a query may wait for a slot (default
	// 2s); one whose estimated wait is longer is refused at once with 503.
	MaxQueueWait Duration `yaml:"max_queue_wait"`
	// MaxPerRequester caps the queries one requester may have running or
	// waiting (default 4); more are refused with 429 and Retry-After.
	MaxPerRequester int `yaml:"max_per_requester"`
	// MemoryBudget is the memory all running queries share, e.g. "8GB":
	// each query reserves MemoryLimit of it before it may run. Empty: the
	// wiring derives it (MaxConcurrent × MemoryLimit, at most half the
	// machine's memory, at least one MemoryLimit).
	MemoryBudget string `yaml:"memory_budget"`
	// MaxSQLBytes caps a query's SQL text (default 256 KiB).
	MaxSQLBytes int `yaml:"max_sql_bytes"`
	// MaxInList caps the values of one IN list (default 10,000).
	MaxInList int `yaml:"max_in_list"`
	// MaxDepth caps how deeply a query's expressions and subqueries nest
	// (default 200).
	MaxDepth int `yaml:"max_depth"`
	// MaxTempPerQuery is the most a query may spill to TempDir, e.g.
	// "4GB" (DuckDB's max_temp_directory_size; default 4GB).
	MaxTempPerQuery string `yaml:"max_temp_per_query"`
	// PushdownOff turns kinds of pushdown off, for tests and for stores
	// that misbehave: "columns", "filters", "limit", "topn" (ORDER BY
	// ... LIMIT sent to the store), "prune" (councils left out by a
	// condition on council), "aggregate" (partial aggregates computed in
	// the stores), "query" (a query the store answers whole, handed to the
	// client without DuckDB), "join" (a join of two tables of one store
	// answered whole by that store; off too when "query" is).
	PushdownOff []string `yaml:"pushdown_off"`
}

// Pushdown kinds that PushdownOff may name.
var PushdownKinds = []string{"columns", "filters", "limit", "topn", "prune", "aggregate", "query", "join"}

// PushdownOn reports whether a kind of pushdown is on.
func (q Query) PushdownOn(kind string) bool { return !slices.Contains(q.PushdownOff, kind) }

// Source is one council store.
type Source struct {
	ID      string `yaml:"id"`      // the name used in SQL
	Council string `yaml:"council"` // official name
	GSS     string `yaml:"gss"`     // GSS code, e.g. S12000036
	Type    string `yaml:"type"`    // adapter: postgres, mysql, sqlite, duckdb, files
	DSN     string `yaml:"dsn"`     // postgres, mysql
	Path    string `yaml:"path"`    // sqlite, duckdb, files (resolved against the config dir)
	// Schema is the database schema to expose (postgres; default public).
	Schema string `yaml:"schema"`
	// Tables limits what is exposed; empty exposes every table.
	Tables []string `yaml:"tables"`
	// Files maps table names to files, for the files adapter.
	Files map[string]FileTable `yaml:"files"`
	// MaxConnections caps connections to the store (default 4). A scan
	// holds one for as long as it streams, so it also caps the scans of
	// this source running at once; more wait for a free connection, within
	// their query's timeout.
	MaxConnections int `yaml:"max_connections"`
	// MaxConcurrent caps this store's scans (and partial aggregates) open
	// at once, each from its start until its stream is released (default
	// 4). A scan that finds them all open waits; once the store has shown
	// no progress (no scan started, no batch read, no scan ended) for
	// StallTimeout (default 10s), it is taken as stuck and such scans fail
	// at once, naming the council, so one council's slow or unreachable
	// store holds no more than MaxConcurrent of the gateway's query slots.
	MaxConcurrent int      `yaml:"max_concurrent"`
	StallTimeout  Duration `yaml:"stall_timeout"`
	// BreakerFailures scans in a row failing for the store's own reasons
	// (default 3; negative: never) make the gateway skip the store for
	// BreakerCooldown (default 5s, doubling on each failed retry, to at
	// most a minute or the cooldown if longer): queries that need it fail
	// at once with its last error (or leave it out, with partial), and
	// /readyz shows it open.
	BreakerFailures int      `yaml:"breaker_failures"`
	BreakerCooldown Duration `yaml:"breaker_cooldown"`
	// ReadTimeout, when set, is the longest the store may take to start a
	// scan or to send its next batch while the gateway waits on it; past
	// it the scan fails naming the council (and, with partial, the council
	// is left out). 0 (the default): the query's own timeout alone.
	ReadTimeout Duration `yaml:"read_timeout"`
	// AggregatePushdown says when a GROUP BY query's partial aggregate is
	// computed in this store rather than in the gateway from streamed rows:
	// "auto" (the default; see AggregateAuto), "always" (whenever the store
	// can compute it exactly) or "never".
	AggregatePushdown string `yaml:"aggregate_pushdown"`
	// Accelerate, when set, keeps a local copy of this source's tables in
	// the gateway and answers queries from it (see Accelerate).
	Accelerate *Accelerate `yaml:"accelerate"`
}

// Accelerate configures a source's local copy: the gateway reads the
// store's tables in full (or their new rows) on a schedule, or when a file
// store's files change, keeps them in a DuckDB database of its own and
// answers queries from it, policy applied exactly as on the live store.
type Accelerate struct {
	// Tables limits the copy to these tables; empty copies every table.
	Tables []string `yaml:"tables"`
	// Refresh is how often the copy is read again from the store
	// (default 10m; "0s": only at start and, for files, on change).
	Refresh *Duration `yaml:"refresh"`
	// Mode is "full" (the default: every refresh reads the whole table)
	// or "append" (a refresh reads only the rows whose Key is above the
	// largest the copy holds: for tables that only grow).
	Mode string `yaml:"mode"`
	// Key is the append mode's column: an id or a timestamp whose values
	// only increase as rows are added.
	Key string `yaml:"key"`
	// OnChange refreshes a files source's table as soon as its files
	// change (checked every CheckEvery, default 2s); default true for
	// files sources.
	OnChange *bool `yaml:"on_change"`
	// CheckEvery is how often a files source's files are checked for a
	// change (default 2s).
	CheckEvery Duration `yaml:"check_every"`
	// MaxStaleness, when set, is the oldest a copy may be and still answer:
	// past it (refreshes failing) queries read the live store again. Unset:
	// a copy answers however old, the response saying how old.
	MaxStaleness Duration `yaml:"max_staleness"`
	// Dir keeps the copies' snapshots, so a restart answers at once
	// (default data/accelerated/<source id> beside the config file). It
	// holds council data: it is created readable by the gateway's user
	// only.
	Dir string `yaml:"dir"`
	// EncryptionKeyFile, when set, encrypts the snapshots (AES-256-GCM,
	// the key derived from the file's contents); without the key a
	// snapshot cannot be read, and a changed one is refused.
	EncryptionKeyFile string `yaml:"encryption_key_file"`
	// MemoryLimit caps the DuckDB that holds the copies (default 1GB);
	// beyond it, without encryption, they spill to Dir.
	MemoryLimit string `yaml:"memory_limit"`
}

// Values of Accelerate.Mode.
const (
	AccelerateFull   = "full"
	AccelerateAppend = "append"
)

// Defaults of Accelerate.
const (
	DefaultAccelerateRefresh = 10 * time.Minute
	DefaultAccelerateCheck   = 2 * time.Second
	DefaultAccelerateMemory  = "1GB"
)

// Values of Source.AggregatePushdown.
const (
	AggregateAuto   = "auto"
	AggregateAlways = "always"
	AggregateNever  = "never"
)

// FileTable is one table of a files source: a glob under the source path.
type FileTable struct {
	Glob   string `yaml:"glob"`
	Format string `yaml:"format"` // csv, parquet, json; default from the extension
	// Options are passed to DuckDB's reader (e.g. delim, header, all_varchar).
	Options map[string]string `yaml:"options"`
	// Types fixes the DuckDB type of named CSV columns (e.g. "Date paid":
	// VARCHAR), so the reader's sniffer does not type a column before the
	// mapping's conversion reads it; the other columns are sniffed.
	Types map[string]string `yaml:"types"`
}

// Dataset is a standard dataset: one shared schema that several councils map
// their own tables onto.
type Dataset struct {
	Name        string             `yaml:"name"`
	Description string             `yaml:"description"`
	Columns     []Column           `yaml:"columns"`
	Mappings    map[string]Mapping `yaml:"mappings"` // by source id
	// Key names the standard columns that identify a row within a
	// council (transaction_id); `gateway check --sample` counts the
	// sampled rows that share one.
	Key []string `yaml:"key"`
	// Quality sets the thresholds past which `gateway check --sample`
	// fails a council's table (and exits non-zero).
	Quality Quality `yaml:"quality"`
}

// Quality thresholds for a standard dataset, checked per council over
// the sampled rows. Unset fields check nothing beyond the warnings every
// check prints.
type Quality struct {
	// MaxNullRate: per standard column, the largest share of sampled rows
	// (0 to 1) that may be NULL.
	MaxNullRate map[string]float64 `yaml:"max_null_rate"`
	// MaxFailureRate: the largest share of given values a conversion may
	// fail to read (0: none).
	MaxFailureRate *float64 `yaml:"max_failure_rate"`
	// MinRedactedRate: for a council that declares redaction markers, the
	// smallest share of sampled rows that must match one (a council whose
	// new file spells its marker differently matches none).
	MinRedactedRate *float64 `yaml:"min_redacted_rate"`
	// MaxDuplicateKeys: the most sampled rows that may share a Key.
	MaxDuplicateKeys *int64 `yaml:"max_duplicate_keys"`
	// DatesFrom and DatesTo (YYYY-MM-DD) bound every DATE column; a date
	// outside them, or after today, is counted.
	DatesFrom string `yaml:"dates_from"`
	DatesTo   string `yaml:"dates_to"`
}

// Column is one column of a standard dataset.
type Column struct {
	Name        string `yaml:"name"`
	Type        string `yaml:"type"` // a DuckDB type: VARCHAR, DATE, DECIMAL(14,2), BOOLEAN, ...
	Description string `yaml:"description"`
	// Derive makes the column a function of another column of the
	// dataset, the same for every council (and never mapped):
	// period_start(d), period_end(d), date_precision(d) and
	// financial_year(d) of a DATE column d, redacted(c) of any column c
	// (true where the council's value is one of its redaction markers).
	// A query that reads a derived column reads the column it derives
	// from, as far as policy is concerned, and a mask on that column
	// makes the derived one NULL where it applies.
	Derive string `yaml:"derive"`
	// Since is the version of the dataset that added the column (default
	// 1). A dataset is at the highest version of its columns, and each
	// version is also named std.<dataset>_v<N> with the columns it had,
	// so a saved query that pins a version never sees a column added
	// later.
	Since int `yaml:"since"`
}

// Requester is an API key holder.
type Requester struct {
	ID           string   `yaml:"id"`
	Organisation string   `yaml:"organisation"`
	Roles        []string `yaml:"roles"`
	Purposes     []string `yaml:"purposes"`
	// KeySHA256 is the hex SHA-256 of the API key; the key itself is never
	// stored.
	KeySHA256 string `yaml:"key_sha256"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s or 2m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as "30s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Defaults.
const (
	DefaultHTTP          = "127.0.0.1:8080"
	DefaultFlight        = "127.0.0.1:8815"
	DefaultPostgres      = "127.0.0.1:5433"
	DefaultAdmin         = "127.0.0.1:9090"
	DefaultTicketTTL     = 2 * time.Minute
	DefaultSessionTTL    = time.Hour
	DefaultTimeout       = 60 * time.Second
	DefaultMemoryLimit   = "1GB"
	DefaultMaxBodyBytes  = 1 << 20
	DefaultMaxConcurrent = 16
	// DefaultPolicyTimeout bounds one policy decision. A decision's p99
	// on a loaded 2-core machine was about 0.5 s (max 1.4 s) with 16
	// queries running (BENCHMARKS.md, "Policy decision under load"); a
	// decision that misses it answers 503, so it sits well above that.
	DefaultPolicyTimeout = 2 * time.Second
	// DefaultMaxPerRequester and DefaultMaxQueueWait are
	// query.max_per_requester's and query.max_queue_wait's defaults.
	DefaultMaxPerRequester = 4
	DefaultMaxQueueWait    = 2 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultReadTimeout     = 30 * time.Second
	DefaultHeaderTimeout   = 10 * time.Second
	DefaultIdleTimeout     = 2 * time.Minute
	// DefaultSourceConcurrent and DefaultStallTimeout are
	// sources[].max_concurrent's and sources[].stall_timeout's defaults.
	DefaultSourceConcurrent = 4
	DefaultStallTimeout     = 10 * time.Second
	// DefaultBreakerFailures and DefaultBreakerCooldown are
	// sources[].breaker_failures and breaker_cooldown when not set.
	DefaultBreakerFailures = 3
	DefaultBreakerCooldown = 5 * time.Second
)

// Load reads, expands and validates the file at path.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(raw, path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// Parse parses raw YAML read from file (used for error messages and to
// resolve relative paths). ${NAME} and ${NAME:-default} are replaced from
// the environment; an unset variable without a default is an error.
func Parse(raw []byte, file string) (*Config, error) {
	var missing []string
	expanded := envRef.ReplaceAllFunc(raw, func(m []byte) []byte {
		sub := envRef.FindSubmatch(m)
		if v, ok := os.LookupEnv(string(sub[1])); ok {
			return []byte(v)
		}
		if len(sub[2]) > 0 {
			return sub[3]
		}
		missing = append(missing, string(sub[1]))
		return nil
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("config %s: environment variable %s is not set", file, strings.Join(missing, ", "))
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	c.File = file
	c.Dir = filepath.Dir(abs)
	c.setDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", file, err)
	}
	return &c, nil
}

func (c *Config) setDefaults() {
	if c.Server.HTTP == "" {
		c.Server.HTTP = DefaultHTTP
	}
	if c.Server.Flight == "" {
		c.Server.Flight = DefaultFlight
	}
	if c.Server.DrainTimeout == 0 {
		c.Server.DrainTimeout = Duration(30 * time.Second)
	}
	if c.Server.Admin == "" {
		c.Server.Admin = DefaultAdmin
	}
	if c.Server.Postgres == "" {
		c.Server.Postgres = DefaultPostgres
	}
	if c.Server.MaxBodyBytes == 0 {
		c.Server.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Server.FlightTicketTTL == 0 {
		c.Server.FlightTicketTTL = Duration(DefaultTicketTTL)
	}
	if c.Server.FlightSessionTTL == 0 {
		c.Server.FlightSessionTTL = Duration(DefaultSessionTTL)
	}
	for _, d := range []struct {
		field *Duration
		def   time.Duration
	}{{&c.Server.WriteTimeout, DefaultWriteTimeout}, {&c.Server.ReadTimeout, DefaultReadTimeout},
		{&c.Server.ReadHeaderTimeout, DefaultHeaderTimeout}, {&c.Server.IdleTimeout, DefaultIdleTimeout}} {
		if *d.field == 0 {
			*d.field = Duration(d.def)
		}
	}
	if t := c.Server.HTTPTLS; t != nil {
		t.CertFile, t.KeyFile = c.Resolve(t.CertFile), c.Resolve(t.KeyFile)
	}
	if t := c.Server.FlightTLS; t != nil {
		t.CertFile, t.KeyFile = c.Resolve(t.CertFile), c.Resolve(t.KeyFile)
	}
	if t := c.Server.PostgresTLS; t != nil {
		t.CertFile, t.KeyFile = c.Resolve(t.CertFile), c.Resolve(t.KeyFile)
	}
	if c.Query.Timeout == 0 {
		c.Query.Timeout = Duration(DefaultTimeout)
	}
	if c.Query.MemoryLimit == "" {
		c.Query.MemoryLimit = DefaultMemoryLimit
	}
	if c.Query.Threads == 0 {
		c.Query.Threads = 2
	}
	if c.Query.MaxConcurrent == 0 {
		c.Query.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.Query.MaxQueued == 0 {
		c.Query.MaxQueued = 4 * max(c.Query.MaxConcurrent, 1)
	}
	if c.Query.MaxPerRequester == 0 {
		c.Query.MaxPerRequester = DefaultMaxPerRequester
	}
	if c.Query.MaxQueueWait == 0 {
		c.Query.MaxQueueWait = Duration(DefaultMaxQueueWait)
	}
	if c.Query.MaxSQLBytes == 0 {
		c.Query.MaxSQLBytes = 256 << 10
	}
	if c.Query.MaxInList == 0 {
		c.Query.MaxInList = 10_000
	}
	if c.Query.MaxDepth == 0 {
		c.Query.MaxDepth = 200
	}
	if c.Query.MaxTempPerQuery == "" {
		c.Query.MaxTempPerQuery = "4GB"
	}
	if c.Query.TempDir == "" {
		c.Query.TempDir = filepath.Join(os.TempDir(), "council-gateway")
	} else {
		c.Query.TempDir = c.Resolve(c.Query.TempDir)
	}
	if c.Policy.Dir != "" {
		c.Policy.Dir = c.Resolve(c.Policy.Dir)
	}
	if b := c.Policy.Bundle; b != nil && b.Interval == 0 {
		b.Interval = Duration(30 * time.Second)
	}
	if c.Policy.Timeout == 0 {
		c.Policy.Timeout = Duration(DefaultPolicyTimeout)
	}
	if c.Audit.File == "" {
		c.Audit.File = "audit/audit.jsonl"
	}
	c.Audit.File = c.Resolve(c.Audit.File)
	c.Audit.HMACKeyFile, c.Audit.SigningKeyFile = c.Resolve(c.Audit.HMACKeyFile), c.Resolve(c.Audit.SigningKeyFile)
	c.Policy.HashSaltFile = c.Resolve(c.Policy.HashSaltFile)
	c.Server.FlightTicketKeyFile = c.Resolve(c.Server.FlightTicketKeyFile)
	if o := c.Auth.OIDC; o != nil {
		if o.ClientSecretFile != "" {
			o.ClientSecretFile = c.Resolve(o.ClientSecretFile)
		}
		if len(o.Scopes) == 0 {
			o.Scopes = []string{"openid", "profile", "email"}
		}
		if !slices.Contains(o.Scopes, "openid") {
			o.Scopes = append([]string{"openid"}, o.Scopes...)
		}
		if o.Credential == "" {
			o.Credential = "id_token"
		}
		if o.Name == "" {
			o.Name = "your organisation's sign-in"
		}
	}
	if j := c.Auth.JWT; j != nil {
		if j.JWKSFile != "" {
			j.JWKSFile = c.Resolve(j.JWKSFile)
		}
		if len(j.Algorithms) == 0 {
			j.Algorithms = []string{"RS256", "ES256"}
		}
		if j.Leeway == 0 {
			j.Leeway = Duration(30 * time.Second)
		}
		if j.Claims.ID == "" {
			j.Claims.ID = "sub"
		}
		if j.Claims.Organisation == "" {
			j.Claims.Organisation = "org"
		}
		if j.Claims.Roles == "" {
			j.Claims.Roles = "roles"
		}
		if j.Claims.Purposes == "" {
			j.Claims.Purposes = "purposes"
		}
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		if s.Path != "" {
			s.Path = c.Resolve(s.Path)
		}
		if s.MaxConnections == 0 {
			s.MaxConnections = 4
		}
		if s.MaxConcurrent == 0 {
			s.MaxConcurrent = DefaultSourceConcurrent
		}
		if s.StallTimeout == 0 {
			s.StallTimeout = Duration(DefaultStallTimeout)
		}
		if s.BreakerFailures == 0 {
			s.BreakerFailures = DefaultBreakerFailures
		}
		if s.BreakerCooldown == 0 {
			s.BreakerCooldown = Duration(DefaultBreakerCooldown)
		}
		if s.AggregatePushdown == "" {
			s.AggregatePushdown = AggregateAuto
		}
		if a := s.Accelerate; a != nil {
			if a.Refresh == nil {
				d := Duration(DefaultAccelerateRefresh)
				a.Refresh = &d
			}
			if a.Mode == "" {
				a.Mode = AccelerateFull
			}
			if a.OnChange == nil {
				on := s.Type == "files"
				a.OnChange = &on
			}
			if a.CheckEvery == 0 {
				a.CheckEvery = Duration(DefaultAccelerateCheck)
			}
			if a.Dir == "" {
				a.Dir = filepath.Join("data", "accelerated", s.ID)
			}
			a.Dir = c.Resolve(a.Dir)
			a.EncryptionKeyFile = c.Resolve(a.EncryptionKeyFile)
			a.Tables = slices.Clone(a.Tables)
			if a.MemoryLimit == "" {
				a.MemoryLimit = DefaultAccelerateMemory
			}
		}
	}
}

// Resolve makes a path in the file absolute, relative to the config dir.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// AdapterTypes are the source types the gateway knows.
var AdapterTypes = []string{"postgres", "mysql", "sqlite", "duckdb", "files"}

var ident = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
var gssCode = regexp.MustCompile(`^[EWSN][0-9]{8}$`)
var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// reserved source ids: schema names the engine uses itself.
var reserved = map[string]bool{"std": true, "gateway": true, "main": true, "temp": true, "system": true, "information_schema": true, "pg_catalog": true, "memory": true}

func (c *Config) validate() error {
	var errs []error
	if t := c.Server.HTTPTLS; t != nil && (t.CertFile == "" || t.KeyFile == "") {
		errs = append(errs, errors.New("server.http_tls: fields cert_file and key_file are both required"))
	}
	if p := c.Server.PublicURL; p != "" {
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("server.public_url %q must be the address the HTTP door is reached at, scheme and host only (https://gateway.example.gov.uk)", p))
		}
	}
	if t := c.Server.FlightTLS; t != nil && (t.CertFile == "" || t.KeyFile == "") {
		errs = append(errs, errors.New("server.flight_tls: fields cert_file and key_file are both required"))
	}
	if t := c.Server.PostgresTLS; t != nil && (t.CertFile == "" || t.KeyFile == "") {
		errs = append(errs, errors.New("server.postgres_tls: fields cert_file and key_file are both required"))
	}
	if c.Server.PostgresMaxConnections < 0 || c.Server.PostgresMaxConnectionsPerRequester < 0 || c.Server.PostgresIdleTimeout < 0 {
		errs = append(errs, errors.New("server: postgres_max_connections, postgres_max_connections_per_requester and postgres_idle_timeout must be positive"))
	}
	if c.Server.FlightTicketTTL < 0 || c.Server.FlightSessionTTL < 0 {
		errs = append(errs, errors.New("server: flight_ticket_ttl and flight_session_ttl must be positive"))
	}
	if c.Server.WriteTimeout < 0 || c.Server.ReadTimeout < 0 || c.Server.ReadHeaderTimeout < 0 || c.Server.IdleTimeout < 0 {
		errs = append(errs, errors.New("server: write_timeout, read_timeout, read_header_timeout and idle_timeout must be positive"))
	}
	if len(c.Sources) == 0 {
		errs = append(errs, errors.New("sources: at least one source is needed"))
	}
	seen := map[string]bool{}
	for i, s := range c.Sources {
		where := fmt.Sprintf("sources[%d]", i)
		if s.ID != "" {
			where = fmt.Sprintf("source %q", s.ID)
		}
		switch {
		case s.ID == "":
			errs = append(errs, fmt.Errorf("%s: field id is required", where))
		case !ident.MatchString(s.ID):
			errs = append(errs, fmt.Errorf("%s: field id must be lower-case letters, digits and _ (it is used in SQL)", where))
		case reserved[s.ID] || strings.HasPrefix(s.ID, "__"):
			errs = append(errs, fmt.Errorf("%s: field id %q is reserved (as are ids starting with __)", where, s.ID))
		case seen[s.ID]:
			errs = append(errs, fmt.Errorf("%s: field id is used twice", where))
		}
		seen[s.ID] = true
		if s.Council == "" {
			errs = append(errs, fmt.Errorf("%s: field council (the official name) is required", where))
		}
		if !gssCode.MatchString(s.GSS) {
			errs = append(errs, fmt.Errorf("%s: field gss %q is not a GSS code like S12000036", where, s.GSS))
		}
		switch s.Type {
		case "postgres", "mysql":
			if s.DSN == "" {
				errs = append(errs, fmt.Errorf("%s: field dsn is required for type %s", where, s.Type))
			}
		case "sqlite", "duckdb", "files":
			if s.Path == "" {
				errs = append(errs, fmt.Errorf("%s: field path is required for type %s", where, s.Type))
			}
		case "":
			errs = append(errs, fmt.Errorf("%s: field type is required (one of %s)", where, strings.Join(AdapterTypes, ", ")))
		default:
			errs = append(errs, fmt.Errorf("%s: field type %q is not one of %s", where, s.Type, strings.Join(AdapterTypes, ", ")))
		}
		switch s.AggregatePushdown {
		case "", AggregateAuto, AggregateAlways, AggregateNever:
		default:
			errs = append(errs, fmt.Errorf("%s: field aggregate_pushdown %q is not auto, always or never", where, s.AggregatePushdown))
		}
		if s.MaxConnections < 0 {
			errs = append(errs, fmt.Errorf("%s: field max_connections must be positive", where))
		}
		if s.MaxConcurrent < 0 || s.StallTimeout < 0 {
			errs = append(errs, fmt.Errorf("%s: fields max_concurrent and stall_timeout must be positive", where))
		}
		if s.ReadTimeout < 0 {
			errs = append(errs, fmt.Errorf("%s: field read_timeout must be positive", where))
		}
		if s.BreakerCooldown < 0 {
			errs = append(errs, fmt.Errorf("%s: field breaker_cooldown must be positive", where))
		}
		if a := s.Accelerate; a != nil {
			errs = append(errs, a.validate(where, s.Type)...)
		}
		if len(s.Files) > 0 && s.Type != "files" {
			errs = append(errs, fmt.Errorf("%s: field files is only for type files", where))
		}
		for name, f := range s.Files {
			if f.Glob == "" {
				errs = append(errs, fmt.Errorf("%s: files.%s: field glob is required", where, name))
			}
			switch f.Format {
			case "", "csv", "parquet", "json":
			default:
				errs = append(errs, fmt.Errorf("%s: files.%s: field format %q is not csv, parquet or json", where, name, f.Format))
			}
		}
	}
	dsSeen := map[string]bool{}
	for i, d := range c.Datasets {
		where := fmt.Sprintf("standard_datasets[%d]", i)
		if d.Name != "" {
			where = fmt.Sprintf("standard dataset %q", d.Name)
		}
		if !ident.MatchString(d.Name) {
			errs = append(errs, fmt.Errorf("%s: field name must be lower-case letters, digits and _", where))
		}
		if regexp.MustCompile(`_v[0-9]+$`).MatchString(d.Name) {
			errs = append(errs, fmt.Errorf("%s: a name ending _v<number> is kept for the dataset's versions (std.<name>_v1, ...)", where))
		}
		if dsSeen[d.Name] {
			errs = append(errs, fmt.Errorf("%s: name is used twice", where))
		}
		dsSeen[d.Name] = true
		cols := map[string]bool{"council": true, "council_gss": true}
		for j, col := range d.Columns {
			if !ident.MatchString(col.Name) {
				errs = append(errs, fmt.Errorf("%s: columns[%d]: name %q must be lower-case letters, digits and _", where, j, col.Name))
			}
			if cols[col.Name] {
				errs = append(errs, fmt.Errorf("%s: column %q is defined twice or is reserved (council and council_gss are added by the gateway)", where, col.Name))
			}
			cols[col.Name] = true
			if col.Type == "" {
				errs = append(errs, fmt.Errorf("%s: column %q: field type is required", where, col.Name))
			}
		}
		if len(d.Columns) == 0 {
			errs = append(errs, fmt.Errorf("%s: field columns: at least one column is needed", where))
		}
		for src, m := range d.Mappings {
			if !seen[src] {
				errs = append(errs, fmt.Errorf("%s: mappings.%s: no source has id %q", where, src, src))
			}
			if m.Table == "" {
				errs = append(errs, fmt.Errorf("%s: mappings.%s: field table is required", where, src))
			}
			for col := range m.Columns {
				if !cols[col] || col == "council" || col == "council_gss" {
					errs = append(errs, fmt.Errorf("%s: mappings.%s.columns.%s: the dataset has no column %q", where, src, col, col))
				}
			}
		}
		errs = append(errs, validateDataset(where, d)...)
	}
	reqSeen := map[string]bool{}
	keySeen := map[string]bool{}
	for i, r := range c.Requesters {
		where := fmt.Sprintf("requesters[%d]", i)
		if r.ID != "" {
			where = fmt.Sprintf("requester %q", r.ID)
		}
		if r.ID == "" {
			errs = append(errs, fmt.Errorf("%s: field id is required", where))
		} else if reqSeen[r.ID] {
			errs = append(errs, fmt.Errorf("%s: id is used twice", where))
		}
		reqSeen[r.ID] = true
		if !sha256Hex.MatchString(r.KeySHA256) {
			errs = append(errs, fmt.Errorf("%s: field key_sha256 must be 64 lower-case hex digits (sha256sum of the key)", where))
		} else if keySeen[r.KeySHA256] {
			errs = append(errs, fmt.Errorf("%s: field key_sha256: the same key is given to two requesters", where))
		}
		keySeen[r.KeySHA256] = true
	}
	if j := c.Auth.JWT; j != nil {
		if (j.JWKSFile == "") == (j.JWKSURL == "") {
			errs = append(errs, errors.New("auth.jwt: give exactly one of jwks_file and jwks_url"))
		}
		if j.Issuer == "" || j.Audience == "" {
			errs = append(errs, errors.New("auth.jwt: fields issuer and audience are required"))
		}
		for _, a := range j.Algorithms {
			if strings.EqualFold(a, "none") {
				errs = append(errs, errors.New("auth.jwt: algorithm none is never allowed"))
			}
		}
	}
	if o := c.Auth.OIDC; o != nil {
		errs = append(errs, o.validate(c.Auth.JWT)...)
	}
	if c.Policy.HashSalt != "" && c.Policy.HashSaltFile != "" {
		errs = append(errs, errors.New("policy: give hash_salt or hash_salt_file, not both"))
	}
	if b := c.Policy.Bundle; b != nil {
		u, err := url.Parse(b.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("policy.bundle: field url %q must be an http(s) URL of the bundle", b.URL))
		}
		if c.Policy.Dir != "" {
			errs = append(errs, errors.New("policy: give dir or bundle, not both"))
		}
		if b.Interval < 0 || (b.Interval > 0 && b.Interval < Duration(time.Second)) {
			errs = append(errs, errors.New("policy.bundle: field interval must be a second or more"))
		}
	} else if !c.Policy.Disabled && c.Policy.Dir == "" {
		errs = append(errs, errors.New("policy: field dir is required (the Rego policies and agreements), or bundle, or set disabled: true for development"))
	}
	for _, k := range c.Query.PushdownOff {
		if !slices.Contains(PushdownKinds, k) {
			errs = append(errs, fmt.Errorf("query: field pushdown_off: %q is not one of %s", k, strings.Join(PushdownKinds, ", ")))
		}
	}
	if c.Query.Timeout < 0 {
		errs = append(errs, errors.New("query: field timeout must be positive"))
	}
	errs = append(errs, c.Query.validateLimits()...)
	for _, f := range []struct {
		name string
		n    int
	}{{"max_sql_bytes", c.Query.MaxSQLBytes}, {"max_in_list", c.Query.MaxInList}, {"max_depth", c.Query.MaxDepth}} {
		if f.n < 0 {
			errs = append(errs, fmt.Errorf("query: field %s must be positive", f.name))
		}
	}
	return errors.Join(errs...)
}

// ValidConvert checks a conversion name.
func ValidConvert(conv string) error {
	name, arg, _ := strings.Cut(conv, ":")
	switch name {
	case "", "amount", "bool", "trim", "excel_date":
		if arg != "" {
			return fmt.Errorf("%q takes no argument", name)
		}
		return nil
	case "date", "timestamp":
		if arg == "" {
			return fmt.Errorf("%q needs a strptime format, e.g. %s:%%d/%%m/%%Y", name, name)
		}
		return nil
	}
	return fmt.Errorf("%q is not one of date:<format>, timestamp:<format>, excel_date, amount, bool, trim", conv)
}

// validate checks a source's accelerate section; where names the source.
func (a *Accelerate) validate(where, typ string) []error {
	var errs []error
	where += ": accelerate"
	switch a.Mode {
	case AccelerateFull:
		if a.Key != "" {
			errs = append(errs, fmt.Errorf("%s: field key is only for mode append (mode full reads the whole table)", where))
		}
	case AccelerateAppend:
		if a.Key == "" {
			errs = append(errs, fmt.Errorf("%s: mode append needs field key: a column whose values only increase as rows are added (an id, or updated_at)", where))
		}
	default:
		errs = append(errs, fmt.Errorf("%s: field mode %q is not full or append", where, a.Mode))
	}
	if a.Refresh != nil && *a.Refresh < 0 {
		errs = append(errs, fmt.Errorf("%s: field refresh must not be negative", where))
	}
	if a.Refresh != nil && *a.Refresh > 0 && time.Duration(*a.Refresh) < time.Second {
		errs = append(errs, fmt.Errorf("%s: field refresh %s is under a second; a copy refreshed that often is the live store", where, time.Duration(*a.Refresh)))
	}
	if a.CheckEvery < 0 || a.MaxStaleness < 0 {
		errs = append(errs, fmt.Errorf("%s: fields check_every and max_staleness must not be negative", where))
	}
	if *a.OnChange && typ != "files" {
		errs = append(errs, fmt.Errorf("%s: field on_change is only for type files (other stores cannot say when they change; use refresh, or mode append)", where))
	}
	if a.MaxStaleness > 0 && a.Refresh != nil && *a.Refresh > 0 && a.MaxStaleness < *a.Refresh && !*a.OnChange {
		errs = append(errs, fmt.Errorf("%s: max_staleness %s is shorter than refresh %s: the copy would expire before each refresh", where, time.Duration(a.MaxStaleness), time.Duration(*a.Refresh)))
	}
	if _, err := ParseSize(a.MemoryLimit); err != nil {
		errs = append(errs, fmt.Errorf("%s: field memory_limit: %w", where, err))
	}
	seen := map[string]bool{}
	for _, t := range a.Tables {
		if t == "" || seen[strings.ToLower(t)] {
			errs = append(errs, fmt.Errorf("%s: field tables: %q is empty or named twice", where, t))
		}
		seen[strings.ToLower(t)] = true
	}
	return errs
}

// validate checks the console's OIDC sign-in against the JWT
// verification that will check the token its sessions present.
func (o *OIDC) validate(j *JWT) []error {
	var errs []error
	for _, f := range []struct{ name, value string }{{"issuer", o.Issuer}, {"client_id", o.ClientID}, {"redirect_url", o.RedirectURL}} {
		if strings.TrimSpace(f.value) == "" {
			errs = append(errs, fmt.Errorf("auth.oidc: field %s is required", f.name))
		}
	}
	if o.ClientSecret != "" && o.ClientSecretFile != "" {
		errs = append(errs, errors.New("auth.oidc: give client_secret or client_secret_file, not both"))
	}
	if o.RedirectURL != "" {
		u, err := url.Parse(o.RedirectURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "/ui/oidc/callback" {
			errs = append(errs, fmt.Errorf("auth.oidc: field redirect_url %q must be the gateway's own address followed by /ui/oidc/callback (https://gateway.example.gov.uk/ui/oidc/callback)", o.RedirectURL))
		}
	}
	switch o.Credential {
	case "id_token", "access_token":
	default:
		errs = append(errs, fmt.Errorf("auth.oidc: field credential %q is not id_token or access_token", o.Credential))
	}
	switch {
	case j == nil:
		errs = append(errs, errors.New("auth.oidc: needs auth.jwt, which verifies the token a console session presents (issuer, audience, claims)"))
	case j.Issuer != "" && o.Issuer != "" && strings.TrimSuffix(j.Issuer, "/") != strings.TrimSuffix(o.Issuer, "/"):
		errs = append(errs, fmt.Errorf("auth.oidc: issuer %q differs from auth.jwt's issuer %q: the tokens the console signs in with would be refused", o.Issuer, j.Issuer))
	case o.Credential == "id_token" && j.Audience != "" && o.ClientID != "" && j.Audience != o.ClientID:
		errs = append(errs, fmt.Errorf("auth.oidc: the console presents the ID token, whose audience is the client id %q, but auth.jwt's audience is %q: make them equal, or set credential: access_token if the provider issues JWT access tokens for %q", o.ClientID, j.Audience, j.Audience))
	}
	return errs
}
