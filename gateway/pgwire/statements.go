package pgwire

import (
	"strconv"
	"strings"

	"github.com/councildata/gateway/gateway/sqltext"
)

// kind is what a statement is to the door.
type kind int

const (
	kQuery      kind = iota // SELECT, WITH, VALUES, TABLE, EXPLAIN: the engine's (or the catalog's)
	kSet                    // SET name = value, RESET
	kShow                   // SHOW name
	kBegin                  // BEGIN, START TRANSACTION
	kCommit                 // COMMIT, END
	kRollback               // ROLLBACK, ABORT
	kNoop                   // SET TRANSACTION ..., and the like: accepted, nothing to do
	kDeclare                // DECLARE name CURSOR FOR query
	kFetch                  // FETCH / MOVE
	kCloseCur               // CLOSE name | ALL
	kDeallocate             // DEALLOCATE [PREPARE] name | ALL
	kDiscard                // DISCARD ALL
	kCopy                   // COPY (query) TO STDOUT
	kEmpty                  // an empty statement (a driver's ping)
)

// statement is one classified statement.
type statement struct {
	text   string
	toks   []sqltext.Token // all of them, for the catalog's rewrite
	kind   kind
	query  string // the SELECT of kQuery, kDeclare and kCopy
	name   string // the setting, cursor or statement named
	value  string // a SET's value
	all    bool   // FETCH ALL, CLOSE ALL, DEALLOCATE ALL, RESET ALL
	count  int64  // FETCH's count
	move   bool   // MOVE rather than FETCH
	tag    string // the command tag of a utility statement
	csv    bool   // COPY's FORMAT csv
	header bool   // COPY's HEADER
}

// writeWords start statements that would change something: the gateway
// is read-only, so they are refused before anything runs.
var writeWords = map[string]bool{"insert": true, "update": true, "delete": true, "merge": true, "upsert": true,
	"create": true, "drop": true, "alter": true, "truncate": true, "grant": true, "revoke": true, "comment": true,
	"vacuum": true, "analyze": true, "cluster": true, "reindex": true, "refresh": true, "lock": true, "import": true,
	"security": true, "reassign": true, "call": true, "do": true, "load": true, "install": true, "attach": true,
	"detach": true, "checkpoint": true, "export": true, "pragma": true, "use": true, "notify": true, "listen": true,
	"unlisten": true, "prepare": true, "execute": true, "savepoint": true, "release": true, "summarize": true,
	"describe": true}

func refuseWrite(word string) error {
	switch word {
	case "prepare", "execute":
		return newError(stateNotSupported, "SQL-level %s is not supported; use your driver's prepared statements (the extended query protocol)", strings.ToUpper(word))
	case "listen", "notify", "unlisten":
		return newError(stateNotSupported, "%s is not supported: the gateway has no notifications", strings.ToUpper(word))
	case "savepoint", "release":
		return newError(stateNotSupported, "%s is not supported: the gateway is read-only and its transactions are no-ops", strings.ToUpper(word))
	case "describe", "summarize", "use", "pragma", "attach", "detach", "install", "load", "export", "checkpoint":
		return newError(stateNotSupported, "%s is not available over the PostgreSQL door; \\dt and \\d (the pg_catalog) describe the tables you may read", strings.ToUpper(word))
	}
	return newError(stateReadOnly, "cannot execute %s: the gateway is read-only (SELECT, WITH, VALUES, EXPLAIN, SHOW and COPY ... TO STDOUT are accepted)", strings.ToUpper(word))
}

// classify says what a statement is, or why it is refused.
func classify(text string) (*statement, error) {
	toks, err := sqltext.Lex(text)
	if err != nil {
		return nil, newError(stateSyntax, "%v", err)
	}
	w := sqltext.Words(toks)
	st := &statement{text: text, toks: toks}
	if len(w) == 0 {
		return nil, newError(stateSyntax, "empty statement")
	}
	first := strings.ToLower(w[0].Text)
	word := func(i int) string {
		if i < len(w) {
			return strings.ToLower(w[i].Text)
		}
		return ""
	}
	rest := func(i int) string { // the statement's text from token w[i]
		if i >= len(w) {
			return ""
		}
		return strings.TrimSpace(text[w[i].Pos:])
	}
	switch first {
	case "select", "with", "values", "table", "explain", "(", "from":
		st.kind, st.query = kQuery, text
	case "begin", "start":
		st.kind, st.tag = kBegin, "BEGIN"
		if first == "start" {
			st.tag = "START TRANSACTION"
		}
	case "commit", "end":
		st.kind, st.tag = kCommit, "COMMIT"
	case "rollback", "abort":
		if word(1) == "to" || word(2) == "to" {
			return nil, refuseWrite("savepoint")
		}
		st.kind, st.tag = kRollback, "ROLLBACK"
	case "set":
		return classifySet(st, w, text)
	case "reset":
		st.kind, st.tag = kSet, "RESET"
		if word(1) == "all" {
			st.all = true
		} else {
			st.name = settingName(w[1:])
		}
	case "show":
		st.kind = kShow
		st.name = settingName(w[1:])
		if st.name == "all" {
			st.all = true
		}
		if st.name == "" {
			return nil, newError(stateSyntax, "SHOW needs a setting's name")
		}
	case "declare":
		return classifyDeclare(st, w, text)
	case "fetch", "move":
		return classifyFetch(st, w)
	case "close":
		st.kind, st.tag = kCloseCur, "CLOSE CURSOR"
		if word(1) == "all" {
			st.all = true
		} else if len(w) > 1 {
			st.name = w[1].Name()
		} else {
			return nil, newError(stateSyntax, "CLOSE needs a cursor's name or ALL")
		}
	case "deallocate":
		st.kind, st.tag = kDeallocate, "DEALLOCATE"
		i := 1
		if word(1) == "prepare" {
			i = 2
		}
		if word(i) == "all" {
			st.all, st.tag = true, "DEALLOCATE ALL"
		} else if i < len(w) {
			st.name = w[i].Name()
		}
	case "discard":
		st.kind, st.tag = kDiscard, "DISCARD "+strings.ToUpper(word(1))
	case "copy":
		return classifyCopy(st, w, text, rest)
	default:
		if writeWords[first] {
			return nil, refuseWrite(first)
		}
		return nil, newError(stateSyntax, "syntax error at or near %q: the gateway accepts SELECT, WITH, VALUES, EXPLAIN, SET/SHOW of the session's settings, transactions (as no-ops), cursors and COPY ... TO STDOUT", w[0].Text)
	}
	return st, nil
}

// settingName is a setting's name from its tokens: gateway.purpose,
// "DateStyle", TIME ZONE, transaction_isolation.
func settingName(w []sqltext.Token) string {
	var parts []string
	for i := 0; i < len(w); i++ {
		t := w[i]
		switch {
		case t.Kind == sqltext.Word || t.Kind == sqltext.QuotedName:
			parts = append(parts, t.Name())
		case t.Text == ".":
			continue
		default:
			i = len(w)
			continue
		}
		if i+1 < len(w) && w[i+1].Text == "." {
			parts[len(parts)-1] += "."
			i++
			continue
		}
		break
	}
	name := strings.Join(parts, "")
	if name == "time" && len(w) > 1 && strings.EqualFold(w[1].Text, "zone") {
		return "timezone"
	}
	return strings.ToLower(name)
}

func classifySet(st *statement, w []sqltext.Token, text string) (*statement, error) {
	st.kind, st.tag = kSet, "SET"
	i := 1
	if i < len(w) && (w[i].Is("session") || w[i].Is("local")) {
		if w[i].Is("session") && i+1 < len(w) && (w[i+1].Is("characteristics") || w[i+1].Is("authorization")) {
			if w[i+1].Is("authorization") {
				return nil, newError(stateInsufficientPriv, "SET SESSION AUTHORIZATION is not accepted: the API key decides who you are")
			}
			st.kind = kNoop // SET SESSION CHARACTERISTICS AS TRANSACTION ...
			return st, nil
		}
		i++
	}
	if i < len(w) && w[i].Is("transaction") {
		st.kind = kNoop
		return st, nil
	}
	if i < len(w) && w[i].Is("time") && i+1 < len(w) && w[i+1].Is("zone") {
		st.name = "timezone"
		i += 2
	} else {
		j := i
		for j < len(w) && (w[j].Kind == sqltext.Word || w[j].Kind == sqltext.QuotedName || w[j].Text == ".") {
			if j > i && w[j-1].Text != "." && w[j].Text != "." {
				break
			}
			j++
		}
		st.name = settingName(w[i:j])
		i = j
		if i < len(w) && (w[i].Text == "=" || w[i].Is("to")) {
			i++
		} else if st.name != "timezone" {
			return nil, newError(stateSyntax, "SET %s needs = or TO and a value", st.name)
		}
	}
	if st.name == "" {
		return nil, newError(stateSyntax, "SET needs a setting's name")
	}
	var vals []string
	for ; i < len(w); i++ {
		t := w[i]
		switch t.Kind {
		case sqltext.String:
			vals = append(vals, t.Unquoted())
		case sqltext.Symbol:
			if t.Text != "," {
				vals = append(vals, t.Text)
			}
		default:
			vals = append(vals, t.Text)
		}
	}
	st.value = strings.Join(vals, ", ")
	if len(vals) == 1 && strings.EqualFold(vals[0], "default") {
		st.value, st.all = "", true // SET x TO DEFAULT: a reset of x
	}
	return st, nil
}

func classifyDeclare(st *statement, w []sqltext.Token, text string) (*statement, error) {
	st.kind, st.tag = kDeclare, "DECLARE CURSOR"
	if len(w) < 2 {
		return nil, newError(stateSyntax, "DECLARE needs a cursor's name")
	}
	st.name = w[1].Name()
	for i := 2; i < len(w); i++ {
		if w[i].Is("binary") {
			return nil, newError(stateNotSupported, "DECLARE ... BINARY CURSOR is not supported; declare a plain cursor")
		}
		if w[i].Is("for") {
			if i+1 >= len(w) {
				break
			}
			st.query = strings.TrimSpace(text[w[i+1].Pos:])
			inner, err := classify(st.query)
			if err != nil {
				return nil, err
			}
			if inner.kind != kQuery {
				return nil, newError(stateSyntax, "DECLARE ... CURSOR FOR needs a SELECT")
			}
			return st, nil
		}
	}
	return nil, newError(stateSyntax, "DECLARE %s needs CURSOR FOR and a SELECT", st.name)
}

func classifyFetch(st *statement, w []sqltext.Token) (*statement, error) {
	st.kind, st.move, st.count = kFetch, w[0].Is("move"), 1
	i := 1
	if i < len(w) && (w[i].Is("forward") || w[i].Is("next")) {
		if w[i].Is("next") {
			i++
		} else {
			i++
			if i < len(w) && w[i].Is("all") {
				st.all = true
				i++
			} else if i < len(w) && w[i].Kind == sqltext.Number {
				n, err := strconv.ParseInt(w[i].Text, 10, 64)
				if err != nil || n < 0 {
					return nil, newError(stateSyntax, "FETCH FORWARD needs a count of rows")
				}
				st.count = n
				i++
			}
		}
	} else if i < len(w) && w[i].Is("all") {
		st.all = true
		i++
	} else if i < len(w) && w[i].Kind == sqltext.Number {
		n, err := strconv.ParseInt(w[i].Text, 10, 64)
		if err != nil || n < 0 {
			return nil, newError(stateSyntax, "FETCH needs a count of rows")
		}
		st.count = n
		i++
	} else if i < len(w) && (w[i].Is("prior") || w[i].Is("first") || w[i].Is("last") || w[i].Is("absolute") || w[i].Is("relative") || w[i].Is("backward")) {
		return nil, newError(stateNotSupported, "FETCH %s is not supported: the gateway's cursors only move forward", strings.ToUpper(w[i].Text))
	}
	if i < len(w) && (w[i].Is("from") || w[i].Is("in")) {
		i++
	}
	if i >= len(w) {
		return nil, newError(stateSyntax, "FETCH needs a cursor's name")
	}
	st.name = w[i].Name()
	return st, nil
}

func classifyCopy(st *statement, w []sqltext.Token, text string, rest func(int) string) (*statement, error) {
	st.kind = kCopy
	i := 1
	if i < len(w) && w[i].Text == "(" {
		depth, j := 0, i
		for ; j < len(w); j++ {
			switch w[j].Text {
			case "(":
				depth++
			case ")":
				depth--
			}
			if depth == 0 {
				break
			}
		}
		if j >= len(w) {
			return nil, newError(stateSyntax, "COPY ( ... ) is not closed")
		}
		st.query = strings.TrimSpace(text[w[i].Pos+1 : w[j].Pos])
		i = j + 1
	} else if i < len(w) {
		j := i
		for j < len(w) && (w[j].Kind == sqltext.Word || w[j].Kind == sqltext.QuotedName || w[j].Text == ".") && !w[j].Is("to") && !w[j].Is("from") {
			j++
		}
		if j == i {
			return nil, newError(stateSyntax, "COPY needs a table's name or ( SELECT ... ) before TO STDOUT")
		}
		st.query = "SELECT * FROM " + strings.TrimSpace(text[w[i].Pos:w[j-1].Pos+len(w[j-1].Text)])
		i = j
	}
	if i < len(w) && w[i].Is("from") {
		return nil, newError(stateReadOnly, "cannot execute COPY FROM: the gateway is read-only")
	}
	if i >= len(w) || !w[i].Is("to") || i+1 >= len(w) {
		return nil, newError(stateSyntax, "COPY needs TO STDOUT")
	}
	if !w[i+1].Is("stdout") {
		return nil, newError(stateInsufficientPriv, "COPY to a file on the gateway's machine is not available; use COPY ... TO STDOUT (psql's \\copy writes your own file)")
	}
	for _, t := range w[i+2:] {
		switch {
		case t.Is("csv"):
			st.csv = true
		case t.Is("header"):
			st.header = true
		case t.Is("binary"):
			return nil, newError(stateNotSupported, "COPY ... BINARY is not supported; use the text or CSV format")
		case t.Kind == sqltext.String && strings.EqualFold(t.Unquoted(), "csv"):
			st.csv = true
		}
	}
	inner, err := classify(st.query)
	if err != nil {
		return nil, err
	}
	if inner.kind != kQuery {
		return nil, newError(stateSyntax, "COPY ( ... ) TO STDOUT needs a SELECT")
	}
	return st, nil
}
