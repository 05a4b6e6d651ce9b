package synth

import (
	"github.com/councildata/gateway/gateway/config"
)

// StandardDatasets returns the gateway config of the two standard datasets
// with a mapping for each council onto its dialect's local columns: what a
// hand-written config such as deploy/demo/gateway.yaml says, generated for
// councils loaded into databases by tests and benchmarks.
func StandardDatasets(councils []Council) []config.Dataset {
	out := make([]config.Dataset, 0, len(Datasets))
	for _, ds := range Datasets {
		d := config.Dataset{Name: ds, Mappings: map[string]config.Mapping{}}
		for _, c := range StandardColumns(ds) {
			d.Columns = append(d.Columns, config.Column{Name: c.Name, Type: c.Type, Description: c.Description})
		}
		for _, c := range councils {
			dl := DialectOf(c, ds)
			if dl == nil {
				continue
			}
			m := config.Mapping{Table: dl.Table, Columns: map[string]config.ColumnMapping{}}
			for _, col := range dl.Columns {
				if col.Standard != "" {
					m.Columns[col.Standard] = config.ColumnMapping{From: col.Name, Convert: col.Convert, Values: col.Values}
				}
			}
			d.Mappings[c.ID] = m
		}
		out = append(out, d)
	}
	return out
}
