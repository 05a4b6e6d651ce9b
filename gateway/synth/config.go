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
		d := config.Dataset{Name: ds, Mappings: map[string]config.Mapping{}, Key: []string{Keys[ds]}}
		for _, c := range StandardColumns(ds) {
			d.Columns = append(d.Columns, config.Column{Name: c.Name, Type: c.Type, Description: c.Description, Derive: DerivedColumns[c.Name], Since: SinceVersion[c.Name]})
		}
		for _, c := range councils {
			dl := DialectOf(c, ds)
			if dl == nil {
				continue
			}
			d.Mappings[c.ID] = dl.Mapping()
		}
		out = append(out, d)
	}
	return out
}

// valuesOf is a value map as the config holds it.
func valuesOf(vs map[string]string) map[string]*string {
	if len(vs) == 0 {
		return nil
	}
	out := make(map[string]*string, len(vs))
	for k, v := range vs {
		out[k] = &v
	}
	return out
}
