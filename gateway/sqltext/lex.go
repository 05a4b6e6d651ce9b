package sqltext

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind is a token's kind.
type Kind int

// Token kinds.
const (
	Space      Kind = iota // white space
	Comment                // -- to the end of the line, or /* */ (nested)
	String                 // '...', E'...' (with its prefix) or $tag$...$tag$
	QuotedName             // "..."
	Word                   // a keyword or a bare name
	Number                 // digits, with a dot or exponent
	Param                  // $1, $2, ...
	Mark                   // ?
	Semicolon              // ;
	Symbol                 // any other character: ( ) , . :: ~ and so on
)

// Token is one piece of a statement: Text is q[Pos:Pos+len(Text)].
type Token struct {
	Kind Kind
	Text string
	Pos  int
}

// Is says whether the token is the word w, in any case.
func (t Token) Is(w string) bool { return t.Kind == Word && strings.EqualFold(t.Text, w) }

// Name is the name a Word or QuotedName token stands for: a bare word
// lower-cased, a quoted one unquoted.
func (t Token) Name() string {
	switch t.Kind {
	case QuotedName:
		return strings.ReplaceAll(t.Text[1:len(t.Text)-1], `""`, `"`)
	case Word:
		return strings.ToLower(t.Text)
	}
	return ""
}

// Unquoted is the value of a String token (a plain '...' or E'...' one,
// with E's backslash escapes for \\, \' and \n, \t, \r).
func (t Token) Unquoted() string {
	s := t.Text
	switch {
	case strings.HasPrefix(s, "$"):
		end := strings.IndexByte(s[1:], '$') + 2
		return s[end : len(s)-end]
	case s[0] == 'e' || s[0] == 'E':
		r := strings.NewReplacer(`\\`, `\`, `\'`, `'`, `\n`, "\n", `\t`, "\t", `\r`, "\r", `''`, `'`)
		return r.Replace(s[2 : len(s)-1])
	}
	return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
}

// Significant is whether the token is neither space nor a comment.
func (t Token) Significant() bool { return t.Kind != Space && t.Kind != Comment }

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// Lex splits q into tokens; their texts put together are q. It fails on a
// string, quoted name or comment left open, and on text that is not UTF-8.
func Lex(q string) ([]Token, error) {
	if !utf8.ValidString(q) {
		return nil, errors.New("the SQL is not valid UTF-8")
	}
	var out []Token
	add := func(k Kind, i, j int) { out = append(out, Token{Kind: k, Text: q[i:j], Pos: i}) }
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			j := i + 1
			for j < len(q) && strings.IndexByte(" \t\n\r\f", q[j]) >= 0 {
				j++
			}
			add(Space, i, j)
			i = j
		case c == '\'' || (c == 'e' || c == 'E') && i+1 < len(q) && q[i+1] == '\'':
			start, escapes := i, c != '\''
			if escapes {
				i++
			}
			j := i + 1
			for ; j < len(q); j++ {
				if escapes && q[j] == '\\' {
					j++
					continue
				}
				if q[j] == '\'' {
					if j+1 < len(q) && q[j+1] == '\'' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(q) {
				return nil, errors.New("unterminated string literal")
			}
			add(String, start, j+1)
			i = j + 1
		case c == '"':
			j := i + 1
			for ; j < len(q); j++ {
				if q[j] == '"' {
					if j+1 < len(q) && q[j+1] == '"' {
						j++
						continue
					}
					break
				}
			}
			if j >= len(q) {
				return nil, errors.New("unterminated quoted identifier")
			}
			add(QuotedName, i, j+1)
			i = j + 1
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			// The comment ends at a line feed or a carriage return, as
			// PostgreSQL's and DuckDB's lexers end it.
			j := strings.IndexAny(q[i:], "\n\r")
			if j < 0 {
				j = len(q) - i
			} else {
				j++
			}
			add(Comment, i, i+j)
			i += j
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			depth, j := 1, i+2
			for ; j < len(q) && depth > 0; j++ {
				switch {
				case q[j] == '/' && j+1 < len(q) && q[j+1] == '*':
					depth++
					j++
				case q[j] == '*' && j+1 < len(q) && q[j+1] == '/':
					depth--
					j++
				}
			}
			if depth > 0 {
				return nil, errors.New("unterminated comment")
			}
			add(Comment, i, j)
			i = j
		case c == '$':
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			if j > i+1 {
				add(Param, i, j)
				i = j
				continue
			}
			k := i + 1
			for k < len(q) && isIdentByte(q[k]) && q[k] < 0x80 {
				k++
			}
			if k < len(q) && q[k] == '$' {
				tag := q[i : k+1]
				end := strings.Index(q[k+1:], tag)
				if end < 0 {
					return nil, errors.New("unterminated dollar-quoted string")
				}
				add(String, i, k+1+end+len(tag))
				i = k + 1 + end + len(tag)
				continue
			}
			add(Symbol, i, k) // $name: a named parameter, refused by Params
			i = k
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(q) && q[i+1] >= '0' && q[i+1] <= '9':
			j := i + 1
			for j < len(q) && (q[j] >= '0' && q[j] <= '9' || q[j] == '.' || q[j] == '_' ||
				(q[j] == 'e' || q[j] == 'E') || (q[j] == '+' || q[j] == '-') && (q[j-1] == 'e' || q[j-1] == 'E')) {
				j++
			}
			add(Number, i, j)
			i = j
		case isIdentByte(c):
			j := i + 1
			for j < len(q) && (isIdentByte(q[j]) || q[j] == '$') {
				j++
			}
			add(Word, i, j)
			i = j
		case c == ';':
			add(Semicolon, i, i+1)
			i++
		case c == '?':
			add(Mark, i, i+1)
			i++
		case c == ':' && i+1 < len(q) && q[i+1] == ':':
			add(Symbol, i, i+2)
			i += 2
		default:
			add(Symbol, i, i+1)
			i++
		}
	}
	return out, nil
}

// Split cuts q into its statements at the semicolons outside strings,
// names and comments; statements with nothing but space and comments are
// dropped, and each is returned trimmed of surrounding space.
func Split(q string) ([]string, error) {
	toks, err := Lex(q)
	if err != nil {
		return nil, err
	}
	var out []string
	start, significant := 0, false
	flush := func(end int) {
		if significant {
			out = append(out, strings.TrimSpace(q[start:end]))
		}
		start, significant = end+1, false
	}
	for _, t := range toks {
		switch {
		case t.Kind == Semicolon:
			flush(t.Pos)
		case t.Significant():
			significant = true
		}
	}
	if start <= len(q) {
		flush(len(q))
	}
	return out, nil
}

// Words are a statement's significant tokens.
func Words(toks []Token) []Token {
	out := make([]Token, 0, len(toks))
	for _, t := range toks {
		if t.Significant() {
			out = append(out, t)
		}
	}
	return out
}

// Quote makes a SQL string literal; DuckDB strings have no backslash
// escapes, so doubling quotes is all it takes. It refuses text that is not
// UTF-8 or holds a NUL byte.
func Quote(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("string is not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "", errors.New("string contains a NUL byte")
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'", nil
}

// Blob is a DuckDB BLOB literal of b, every byte as a \xNN escape.
func Blob(b []byte) string {
	var sb strings.Builder
	sb.WriteString("CAST('")
	for _, c := range b {
		fmt.Fprintf(&sb, "\\x%02X", c)
	}
	sb.WriteString("' AS BLOB)")
	return sb.String()
}
