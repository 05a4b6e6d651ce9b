package auth

import (
	"testing"

	"github.com/councildata/gateway/gateway"
	"github.com/councildata/gateway/gateway/config"
)

func TestKeys(t *testing.T) {
	k := NewKeys([]config.Requester{{ID: "analyst", Organisation: "Fife Council", KeySHA256: "cce657f16c436d5357567f215df4e4d5c56f8a19c32916e43562db7905035a04"}})
	cases := []struct {
		header string
		id     string
		code   gateway.Code
	}{
		{"Bearer demo-analyst", "analyst", ""},
		{"bearer  demo-analyst ", "analyst", ""},
		{"Bearer demo-public", "", gateway.CodeUnauthorized},
		{"Basic ZGVtbw==", "", gateway.CodeUnauthorized},
		{"", "", gateway.CodeUnauthorized},
	}
	for _, c := range cases {
		r, err := k.Authenticate(BearerToken(c.header))
		if c.code != "" {
			if gateway.ErrorCode(err) != c.code {
				t.Errorf("%q: got %v, want %s", c.header, err, c.code)
			}
			continue
		}
		if err != nil || r.ID != c.id {
			t.Errorf("%q: got %v %v, want %s", c.header, r, err, c.id)
		}
	}
}
