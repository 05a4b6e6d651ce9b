package pgwire

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// A session may set its purpose, case reference, coverage and partial
// answers (the gateway.* settings), a statement timeout, and the handful
// of client settings drivers send at connect time, at the values the
// gateway works in (UTF-8, ISO dates, UTC). Anything else is refused:
// the query engine's settings are its operators'.

// clientSettings are accepted as drivers send them; the check says which
// values are, nil for any.
var clientSettings = map[string]func(string) bool{
	"application_name":   nil,
	"extra_float_digits": func(v string) bool { _, err := strconv.Atoi(v); return err == nil },
	"datestyle":          func(v string) bool { return strings.Contains(strings.ToLower(v), "iso") },
	"client_encoding": func(v string) bool {
		switch strings.ToLower(strings.ReplaceAll(v, "-", "")) {
		case "utf8", "unicode", "auto":
			return true
		}
		return false
	},
	"timezone": func(v string) bool {
		switch strings.ToLower(v) {
		case "utc", "gmt", "etc/utc", "z", "zulu", "+00", "00:00", "0", "universal":
			return true
		}
		return false
	},
	"intervalstyle":                       func(v string) bool { return strings.EqualFold(v, "postgres") },
	"standard_conforming_strings":         func(v string) bool { return strings.EqualFold(v, "on") },
	"search_path":                         nil,
	"lock_timeout":                        nil,
	"idle_in_transaction_session_timeout": nil,
	"bytea_output":                        func(v string) bool { return strings.EqualFold(v, "hex") },
	"default_transaction_read_only":       func(v string) bool { return strings.EqualFold(v, "on") || strings.EqualFold(v, "true") },
	"default_transaction_isolation":       nil,
	"transaction_isolation":               nil,
	"geqo":                                nil,
	"jit":                                 nil,
}

// set changes one setting of the session.
func (se *session) set(name, value string) error {
	switch name {
	case "gateway.purpose":
		se.purpose = value
		return nil
	case "gateway.case_ref":
		se.caseRef = value
		return nil
	case "gateway.coverage":
		if value != "" && value != "available" && value != "all" {
			return newError(stateInvalidParamValue, `gateway.coverage must be "available" (the default) or "all", not %q`, value)
		}
		se.coverage = value
		return nil
	case "gateway.partial":
		b, err := strconv.ParseBool(normalBool(value))
		if err != nil {
			return newError(stateInvalidParamValue, "gateway.partial must be on or off, not %q", value)
		}
		se.partial = b
		return nil
	case "statement_timeout":
		d, err := pgDuration(value)
		if err != nil {
			return newError(stateInvalidParamValue, "statement_timeout: %v", err)
		}
		se.timeout = d
		se.settings[name] = value
		return nil
	}
	check, ok := clientSettings[name]
	if !ok {
		if strings.HasPrefix(name, "gateway.") {
			return newError(stateUndefinedObject, "unrecognized gateway setting %q: the session may set gateway.purpose, gateway.case_ref, gateway.coverage and gateway.partial", name)
		}
		return newError(stateInsufficientPriv, "SET %s is not accepted: the gateway's settings are its operators'; a session may set gateway.purpose, gateway.case_ref, gateway.coverage, gateway.partial, statement_timeout and the client settings drivers send (application_name, DateStyle ISO, client_encoding UTF8, TimeZone UTC, extra_float_digits)", name)
	}
	if check != nil && !check(value) {
		return newError(stateInvalidParamValue, "SET %s = %q is not accepted: the gateway works in %s", name, value, defaultSettings()[name])
	}
	if name == "client_encoding" || name == "timezone" || name == "datestyle" {
		return nil // the values the gateway sends stay as reported
	}
	se.settings[name] = value
	return nil
}

func normalBool(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "yes", "1", "t":
		return "true"
	case "off", "false", "no", "0", "f":
		return "false"
	}
	return v
}

// pgDuration reads a PostgreSQL time setting: a number of milliseconds,
// or a number with a unit (ms, s, min, h).
func pgDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(strings.ToLower(v))
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, strconvErr(v)
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"ms", time.Millisecond}, {"min", time.Minute}, {"s", time.Second}, {"h", time.Hour}} {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || n < 0 {
				return 0, strconvErr(v)
			}
			return time.Duration(n * float64(u.unit)), nil
		}
	}
	return 0, strconvErr(v)
}

type strconvErr string

func (e strconvErr) Error() string {
	return "invalid duration " + strconv.Quote(string(e)) + " (milliseconds, or a number with ms, s, min or h)"
}

// reset puts a setting (or every setting) back.
func (se *session) reset(name string, all bool) error {
	if all {
		se.purpose, se.caseRef, se.coverage, se.partial, se.timeout = "", "", "", false, 0
		if !genericDatabase(se.db, se.user) {
			se.purpose = se.db
		}
		return nil
	}
	switch name {
	case "gateway.purpose":
		se.purpose = ""
		return nil
	case "gateway.case_ref", "gateway.coverage", "gateway.partial", "statement_timeout":
		return se.set(name, map[string]string{"gateway.partial": "off", "statement_timeout": "0"}[name])
	}
	if _, ok := clientSettings[name]; ok {
		se.settings[name] = defaultSettings()[name]
		return nil
	}
	return se.set(name, "")
}

// show answers SHOW name (and SHOW ALL).
func (se *session) show(st *statement) ([]column, [][]string, error) {
	value := func(name string) (string, bool) {
		switch name {
		case "gateway.purpose":
			return se.purpose, true
		case "gateway.case_ref":
			return se.caseRef, true
		case "gateway.coverage":
			if se.coverage == "" {
				return "available", true
			}
			return se.coverage, true
		case "gateway.partial":
			if se.partial {
				return "on", true
			}
			return "off", true
		case "gateway.query_id":
			return se.lastQueryID, true
		case "server_version":
			return ServerVersion + " (Council Data Gateway " + se.s.cfg.Version + ")", true
		}
		v, ok := se.settings[name]
		return v, ok
	}
	text := column{oid: oidText, size: -1, mod: -1}
	if st.all {
		names := []string{"gateway.purpose", "gateway.case_ref", "gateway.coverage", "gateway.partial"}
		for k := range se.settings {
			names = append(names, k)
		}
		sort.Strings(names[4:])
		var rows [][]string
		for _, n := range names {
			v, _ := value(n)
			rows = append(rows, []string{n, v, ""})
		}
		name, setting, desc := text, text, text
		name.name, setting.name, desc.name = "name", "setting", "description"
		return []column{name, setting, desc}, rows, nil
	}
	v, ok := value(st.name)
	if !ok {
		return nil, nil, newError(stateUndefinedObject, "unrecognized configuration parameter %q", st.name)
	}
	text.name = st.name
	return []column{text}, [][]string{{v}}, nil
}
