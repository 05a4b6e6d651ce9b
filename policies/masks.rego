# Column masks: the kinds the gateway's engine applies (gateway/decision.go)
# and the shape of one mask in a decision. Agreements name masks per column;
# a mask whose kind or parameters are not valid here makes the agreement's
# terms unusable, so the table is denied rather than shown unmasked.
package gateway

mask_kinds := {
	"null", # NULL
	"redact", # a constant: value, default "REDACTED"
	"hash", # salted hash; the engine adds a salt per requester
	"keep_prefix", # the first n characters
	"postcode_sector", # "EH12 5AB" -> "EH12 5"
	"truncate_date", # to the start of the month or year (unit)
	"round", # to n decimal places (negative n: tens, hundreds...)
}

truncate_units := {"month", "year"}

valid_mask(m) if {
	m.kind in mask_kinds
	not m.kind in {"keep_prefix", "truncate_date", "round"}
	valid_when(m)
}

valid_mask(m) if {
	m.kind == "keep_prefix"
	is_number(m.n)
	m.n >= 1
	valid_when(m)
}

valid_mask(m) if {
	m.kind == "truncate_date"
	m.unit in truncate_units
	valid_when(m)
}

valid_mask(m) if {
	m.kind == "round"
	is_number(object.get(m, "n", 0))
	valid_when(m)
}

valid_when(m) if not m.when

valid_when(m) if m.when == null

valid_when(m) if is_string(m.when)

# mask(m) is m as the decision carries it: kind plus only the parameters
# that are set.
mask(m) := object.union_n([
	{"kind": m.kind},
	opt_string(m, "value"),
	opt_number(m, "n"),
	opt_string(m, "unit"),
	opt_string(m, "when"),
])

opt_string(m, k) := {k: m[k]} if {
	is_string(m[k])
	m[k] != ""
} else := {}

opt_number(m, k) := {k: m[k]} if {
	is_number(m[k])
	m[k] != 0
} else := {}
