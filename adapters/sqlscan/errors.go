package sqlscan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/councildata/gateway/gateway"
)

// StoreError wraps err, returned by a store while doing what (e.g.
// `scan "payments"`), as a *gateway.Error whose text reads
// "postgres <source>: <what>: <err>". The code is CodeCanceled or CodeTimeout
// when ctx has ended (or err says so), CodeSourceFailed otherwise; Source is
// the source id either way. A *gateway.Error in err's chain keeps its code.
func StoreError(ctx context.Context, store, source, what string, err error) error {
	code := gateway.CodeSourceFailed
	var ge *gateway.Error
	switch {
	case errors.As(err, &ge):
		code = ge.Code
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		code = gateway.CodeTimeout
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		code = gateway.CodeCanceled
	}
	return &gateway.Error{Code: code, Source: source, Message: fmt.Sprintf("%s %s: %s", store, source, what), Err: err}
}

// UnknownTable is the CodeNotFound error for a scan of a table the source
// does not expose; it names the table and lists those that exist.
func UnknownTable(store, source, table string, have []string) error {
	have = append([]string(nil), have...)
	sort.Strings(have)
	list := strings.Join(have, ", ")
	if list == "" {
		list = "none"
	}
	return &gateway.Error{
		Code:    gateway.CodeNotFound,
		Source:  source,
		Message: fmt.Sprintf("%s %s: no table %q; tables: %s", store, source, table, list),
	}
}
