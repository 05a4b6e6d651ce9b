package gateway

import "context"

// Requester is the authenticated identity behind a request.
type Requester struct {
	ID           string   `json:"id"`
	Organisation string   `json:"organisation"`
	Roles        []string `json:"roles"`
	Purposes     []string `json:"purposes"`
}

type requesterKey struct{}

// WithRequester returns a context carrying r.
func WithRequester(ctx context.Context, r *Requester) context.Context {
	return context.WithValue(ctx, requesterKey{}, r)
}

// RequesterFrom returns the requester in ctx, or nil.
func RequesterFrom(ctx context.Context) *Requester {
	r, _ := ctx.Value(requesterKey{}).(*Requester)
	return r
}
