package synth

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// text renders a value for a text file: ISO dates, two-decimal amounts,
// true/false; NULL is the empty string.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		return x.Format("2006-01-02")
	case Money:
		return x.String()
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	panic(fmt.Sprintf("synth: cannot render %T", v))
}

// parts groups row indexes by file part, in order of first appearance.
func (t *Table) parts() (names []string, rows map[string][]int) {
	rows = map[string][]int{}
	for i := range t.Rows {
		p := ""
		if i < len(t.Parts) {
			p = t.Parts[i]
		}
		if _, ok := rows[p]; !ok {
			names = append(names, p)
		}
		rows[p] = append(rows[p], i)
	}
	return names, rows
}

func partFile(dir string, t *Table, part, ext string) string {
	if part == "" {
		part = t.Name
	}
	return filepath.Join(dir, t.Name, part+ext)
}

// WriteCSV writes t as CSV files under dir/<table>/, one per part
// (dir/spend/2024-04.csv), with a header row. Values are rendered as text
// (see the dialect for their formats); NULL is an empty field.
func WriteCSV(dir string, t *Table) error {
	names, rows := t.parts()
	for _, p := range names {
		err := writeFile(partFile(dir, t, p, ".csv"), func(w *bufio.Writer) error {
			cw := csv.NewWriter(w)
			head := make([]string, len(t.Columns))
			for i, c := range t.Columns {
				head[i] = c.Name
			}
			if err := cw.Write(head); err != nil {
				return err
			}
			rec := make([]string, len(t.Columns))
			for _, i := range rows[p] {
				for j, v := range t.Rows[i] {
					rec[j] = text(v)
				}
				if err := cw.Write(rec); err != nil {
					return err
				}
			}
			cw.Flush()
			return cw.Error()
		})
		if err != nil {
			return fmt.Errorf("synth: write csv %s: %w", t.Name, err)
		}
	}
	return nil
}

// WriteJSON writes t as newline-delimited JSON under dir/<table>/, one file
// per part, keys in column order: strings, ISO date strings, numbers with
// two decimals for amounts, true/false, null.
func WriteJSON(dir string, t *Table) error {
	names, rows := t.parts()
	keys := make([][]byte, len(t.Columns))
	for i, c := range t.Columns {
		keys[i], _ = json.Marshal(c.Name)
	}
	for _, p := range names {
		err := writeFile(partFile(dir, t, p, ".json"), func(w *bufio.Writer) error {
			for _, i := range rows[p] {
				w.WriteByte('{')
				for j, v := range t.Rows[i] {
					if j > 0 {
						w.WriteByte(',')
					}
					w.Write(keys[j])
					w.WriteByte(':')
					switch x := v.(type) {
					case nil:
						w.WriteString("null")
					case Money:
						w.WriteString(x.String())
					case int64, bool:
						w.WriteString(text(x))
					default:
						b, err := json.Marshal(text(x))
						if err != nil {
							return err
						}
						w.Write(b)
					}
				}
				w.WriteString("}\n")
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("synth: write json %s: %w", t.Name, err)
		}
	}
	return nil
}

func writeFile(path string, fill func(*bufio.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := fill(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
