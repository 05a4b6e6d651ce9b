package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"time"

	"github.com/councildata/gateway/gateway"
)

// Entry is one of a requester's own requests, as their query history
// shows it: what they asked and what came of it. Not the request's
// duration (where a policy filters or masks rows, how long a query took
// grows with rows the requester may not see, which responses never say),
// nor the policy's input and result or an error's text (which can hold
// the operators' causes).
type Entry struct {
	Time    time.Time `json:"time"`
	QueryID string    `json:"query_id"`
	Door    string    `json:"door"`
	Action  string    `json:"action"`
	Outcome string    `json:"outcome"`
	Purpose string    `json:"purpose,omitempty"`
	CaseRef string    `json:"case_ref,omitempty"`
	SQL     string    `json:"sql"`
	Tables  []string  `json:"tables,omitempty"`
	Rows    int64     `json:"rows"`
	// DryRunAs is the requester a dry run decided for, if it was one.
	DryRunAs string `json:"dry_run_as,omitempty"`
}

// HistoryReach is how far back from the log's end History reads: the last
// 32 MiB of records (tens of thousands of requests), so that a requester
// with few requests cannot make every call read a long log whole.
const HistoryReach = 32 << 20

// History reads the log at path from its end and returns the requester's
// last requests (at most limit), newest first, one entry per request (a
// query has a record of its decision and one of its outcome: the entry
// is the outcome), among the records of the log's last HistoryReach
// bytes. It reads back in chunks, only as far as it must.
func History(ctx context.Context, path, requester string, limit int) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, gateway.Wrap(gateway.CodeUnavailable, err, "the audit log cannot be read for the history")
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, gateway.Wrap(gateway.CodeUnavailable, err, "the audit log cannot be read for the history")
	}
	// The requester's id as it is written in a record, to skip the
	// others' records without decoding them.
	idJSON, _ := json.Marshal(requester)
	needle := append([]byte(`"id":`), idJSON...)
	const chunk = 256 << 10
	var out []Entry
	byID := map[string]int{}     // the entry of each request seen
	several := map[string]bool{} // requests whose dry runs were for several requesters
	var carry []byte             // the start of a line whose beginning is further back
	for pos := end; pos > 0 && len(out) < limit && end-pos < HistoryReach; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := int64(chunk)
		if pos < n {
			n = pos
		}
		pos -= n
		buf := make([]byte, n, int(n)+len(carry))
		if _, err := f.ReadAt(buf, pos); err != nil && err != io.EOF {
			return nil, gateway.Wrap(gateway.CodeUnavailable, err, "the audit log cannot be read for the history")
		}
		buf = append(buf, carry...)
		lines := bytes.Split(buf, []byte("\n"))
		carry = nil
		if pos > 0 {
			carry, lines = lines[0], lines[1:] // may be cut: read with the chunk before it
		}
		for i := len(lines) - 1; i >= 0 && len(out) < limit; i-- {
			line := lines[i]
			if len(line) == 0 || !bytes.Contains(line, needle) {
				continue
			}
			var rec Record
			if json.Unmarshal(line, &rec) != nil || rec.Requester.ID != requester {
				continue // a line being written, or another's with the id in its SQL
			}
			e := Entry{Time: rec.Timestamp, QueryID: rec.QueryID, Door: rec.Door, Action: rec.Action, Outcome: rec.Outcome,
				Purpose: rec.Purpose, CaseRef: rec.CaseRef, SQL: rec.SQL, Tables: rec.Tables, Rows: rec.Rows}
			if rec.DryRunAs != nil {
				e.DryRunAs = rec.DryRunAs.ID
			}
			// One entry per request: its last record (the outcome), or,
			// where the last is a catalog lookup made while it was
			// answered, its own.
			if i, seen := byID[rec.QueryID]; seen && rec.QueryID != "" {
				as := out[i].DryRunAs
				if out[i].Action == "catalog" && rec.Action != "catalog" {
					e.Time = out[i].Time
					out[i] = e
				}
				// A dry run's decisions name whom it was for; its entry
				// does too, when they are all for one requester.
				switch {
				case as == "" && e.DryRunAs != "" && !several[rec.QueryID]:
					out[i].DryRunAs = e.DryRunAs
				case as != "" && e.DryRunAs != "" && as != e.DryRunAs:
					several[rec.QueryID], out[i].DryRunAs = true, ""
				default:
					out[i].DryRunAs = as
				}
				continue
			}
			byID[rec.QueryID] = len(out)
			out = append(out, e)
		}
	}
	return out, nil
}
