package auth

import (
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/councildata/gateway/gateway"
)

// requester maps a verified token's claims onto a requester through
// cfg.Claims. The id claim is required; organisation, roles and purposes
// may be absent (policy decides what an identity without them may see).
func (j *JWT) requester(tok jwt.Token) (*gateway.Requester, error) {
	names := j.cfg.Claims
	id, err := stringClaim(tok, names.ID)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, unauthorized(nil, "the token has no %q claim (the requester's id)", names.ID)
	}
	org, err := stringClaim(tok, names.Organisation)
	if err != nil {
		return nil, err
	}
	roles, err := listClaim(tok, names.Roles)
	if err != nil {
		return nil, err
	}
	purposes, err := listClaim(tok, names.Purposes)
	if err != nil {
		return nil, err
	}
	return &gateway.Requester{ID: id, Organisation: org, Roles: roles, Purposes: purposes}, nil
}

// claim returns the value of the claim name, or nil if it is absent. A name
// the token does not hold as such is tried as a dotted path into nested
// objects, as some identity providers nest roles (realm_access.roles).
func claim(tok jwt.Token, name string) any {
	if name == "" {
		return nil
	}
	var v any
	if err := tok.Get(name, &v); err == nil {
		return v
	}
	first, rest, ok := strings.Cut(name, ".")
	if !ok {
		return nil
	}
	if err := tok.Get(first, &v); err != nil {
		return nil
	}
	for _, part := range strings.Split(rest, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		if v, ok = m[part]; !ok {
			return nil
		}
	}
	return v
}

func stringClaim(tok jwt.Token, name string) (string, error) {
	switch v := claim(tok, name).(type) {
	case nil:
		return "", nil
	case string:
		return strings.TrimSpace(v), nil
	default:
		return "", unauthorized(nil, "the token's %q claim is not a string", name)
	}
}

// listClaim reads a claim that is an array of strings or one string of
// values separated by spaces or commas (as OAuth scopes are).
func listClaim(tok jwt.Token, name string) ([]string, error) {
	var out []string
	add := func(s string) {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
			out = append(out, f)
		}
	}
	switch v := claim(tok, name).(type) {
	case nil:
	case string:
		add(v)
	case []string:
		for _, s := range v {
			add(s)
		}
	case []any:
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, unauthorized(fmt.Errorf("element of type %T", e), "the token's %q claim is not a list of strings", name)
			}
			add(s)
		}
	default:
		return nil, unauthorized(nil, "the token's %q claim is not a list of strings", name)
	}
	return out, nil
}
