package pgdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Server is a configured database server (config database_servers[]).
type Server struct {
	ID       string
	Host     string // host name, IP address or Unix socket directory
	Port     int
	User     string
	Password string // never logged nor shown in messages
	SSLMode  string // libpq sslmode ("" = prefer)
}

// String names the server without its password.
func (s *Server) String() string {
	return fmt.Sprintf("%s (%s as %s)", s.ID, s.addr(), s.User)
}

func (s *Server) addr() string {
	if strings.HasPrefix(s.Host, "/") {
		return s.Host + ":" + strconv.Itoa(s.Port)
	}
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

func (s *Server) sslmode() string {
	if s.SSLMode == "" {
		return "prefer"
	}
	return s.SSLMode
}

// conninfo is a libpq connection string for database db, without the
// password (pg_dump and pg_restore get it through PGPASSWORD).
func (s *Server) conninfo(db string) string {
	q := func(v string) string {
		return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `'`, `\'`) + "'"
	}
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=%s connect_timeout=30 application_name=coffer",
		q(s.Host), s.Port, q(s.User), q(db), q(s.sslmode()))
}

// connectTimeout bounds establishing a connection.
const connectTimeout = 30 * time.Second

// sessionSettings make text output deterministic (checksums compare text)
// and the session immune to the server's defaults.
var sessionSettings = []string{
	"SET DateStyle = ISO", "SET IntervalStyle = postgres", "SET extra_float_digits = 3", "SET TimeZone = 'UTC'",
	"SET bytea_output = 'hex'", "SET row_security = off", "SET statement_timeout = 0", "SET lock_timeout = 0",
	"SET idle_in_transaction_session_timeout = 0", "SET search_path = pg_catalog", "SET standard_conforming_strings = on",
	"SET xmloption = content",
}

// connect opens a session to database db on s, with sessionSettings
// (client_encoding is UTF8, pgx's: a database in another encoding is
// converted both ways).
func (s *Server) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	c, err := s.connectPlain(ctx, db)
	if err != nil {
		return nil, err
	}
	for _, q := range sessionSettings {
		if _, err := c.Exec(ctx, q); err != nil {
			c.Close(context.WithoutCancel(ctx))
			return nil, s.queryError(err, "set up the session")
		}
	}
	return c, nil
}

// connectPlain opens a session to database db on s with the server's
// default settings, as pg_restore's (client_encoding UTF8).
func (s *Server) connectPlain(ctx context.Context, db string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.conninfo(db))
	if err != nil {
		return nil, fmt.Errorf("database server %s: invalid connection settings: %s", s.ID, s.scrub(err.Error()))
	}
	cfg.Password = s.Password
	// No prepared-statement cache: sessions run few, mostly unique,
	// statements, and a cache would hold plans across schema changes.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeExec
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	c, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, s.connError(err)
	}
	return c, nil
}

// ConnError is a failure to reach or log in to a server. Its message names
// the server id and address, never the password.
type ConnError struct {
	Server string
	User   string
	// Reason is why, without the server's address: the server's message
	// ("password authentication failed for user \"coffer\""), or the
	// network's ("connection refused").
	Reason string
	Msg    string
	// Code is the SQLSTATE when the server answered ("28P01" wrong
	// password, "3D000" no such database).
	Code string
	err  error
}

func (e *ConnError) Error() string { return e.Msg }
func (e *ConnError) Unwrap() error { return e.err }

func (s *Server) connError(err error) error {
	reason := ""
	code := ""
	var pe *pgconn.PgError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &pe):
		code = pe.Code
		reason = pe.Message
		switch pe.Code {
		case "28P01":
			reason = fmt.Sprintf("password authentication failed for user %q", s.User)
		case "3D000":
			reason = pe.Message
		}
	case errors.As(err, &oe) && oe.Err != nil:
		reason = oe.Err.Error()
	case errors.As(err, &ne):
		reason = ne.Error()
	default:
		reason = err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		reason = "timed out"
	}
	return &ConnError{Server: s.ID, User: s.User, Reason: s.scrub(reason), Code: code, err: errors.Unwrap(err),
		Msg: s.scrub(fmt.Sprintf("cannot connect to database server %s (%s) as %s: %s", s.ID, s.addr(), s.User, reason))}
}

// queryError describes a failed statement (what is an action such as
// "read table public.t").
func (s *Server) queryError(err error, what string) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.Detail != "" {
			msg += " (" + pe.Detail + ")"
		}
		return &QueryError{Code: pe.Code, Msg: s.scrub(fmt.Sprintf("database server %s: %s: %s", s.ID, what, msg)), err: err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &QueryError{Msg: s.scrub(fmt.Sprintf("database server %s: %s: %v", s.ID, what, err)), err: err}
}

// QueryError is a failed statement on a server.
type QueryError struct {
	Code string // SQLSTATE, "" when the connection broke
	Msg  string
	err  error
}

func (e *QueryError) Error() string { return e.Msg }
func (e *QueryError) Unwrap() error { return e.err }

// scrub removes the password from a message (libpq and pgx never print
// it; this is a second line of defence).
func (s *Server) scrub(msg string) string {
	if len(s.Password) >= 3 {
		msg = strings.ReplaceAll(msg, s.Password, "********")
	}
	return msg
}

// maintenanceDB connects to the server's maintenance database (postgres,
// else template1) to create, rename and drop databases.
func (s *Server) maintenance(ctx context.Context) (*pgx.Conn, error) {
	c, err := s.connect(ctx, "postgres")
	var ce *ConnError
	if errors.As(err, &ce) && ce.Code == "3D000" {
		return s.connect(ctx, "template1")
	}
	return c, err
}

// serverMajor is the server's major version and version string.
func serverVersion(ctx context.Context, c *pgx.Conn) (major int, version string, err error) {
	var num int
	if err := c.QueryRow(ctx, "SELECT current_setting('server_version_num')::int, current_setting('server_version')").Scan(&num, &version); err != nil {
		return 0, "", err
	}
	if f := strings.Fields(version); len(f) > 0 {
		version = f[0]
	}
	return num / 10000, version, nil
}

// ident quotes a name as an SQL identifier.
func ident(parts ...string) string {
	return pgx.Identifier(parts).Sanitize()
}
