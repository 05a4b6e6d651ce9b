# Every mask kind, as an agreement names it and as the decision carries it,
# and masks the policy will not pass on.
package gateway_test

masked(masks) := d if {
	fx := patched({"datasets": [{
		"dataset": "spend_over_500",
		"columns_allowed": ["*"],
		"granularity": "record",
		"masks": masks,
	}]})
	d := one(partner, "health-and-social-care", spend("fife", ["amount"])) with data.agreements as {"fx": fx}
}

test_every_mask_kind if {
	masks := {
		"transaction_id": {"kind": "keep_prefix", "n": 4},
		"payment_date": {"kind": "truncate_date", "unit": "month"},
		"organisational_unit": {"kind": "truncate_date", "unit": "year"},
		"expense_type": {"kind": "null"},
		"purpose": {"kind": "redact"},
		"beneficiary_name": {"kind": "redact", "value": "[individual]", "when": "beneficiary_type = 'individual'"},
		"beneficiary_type": {"kind": "hash"},
		"amount": {"kind": "round", "n": -2},
		"irrecoverable_vat": {"kind": "round"},
		"capital_revenue": {"kind": "postcode_sector"},
	}
	d := masked(masks)
	d.allowed

	# round with no n rounds to whole numbers (n 0, left out)
	d.masks == object.union(masks, {"irrecoverable_vat": {"kind": "round"}})
}

test_mask_parameters_not_set_are_left_out if {
	d := masked({"amount": {"kind": "null", "value": "", "n": 0, "unit": null, "when": null}})
	d.masks == {"amount": {"kind": "null"}}
}

test_invalid_masks_deny_rather_than_show if {
	every m in [
		{"kind": "blur"},
		{"kind": "keep_prefix"},
		{"kind": "keep_prefix", "n": 0},
		{"kind": "truncate_date"},
		{"kind": "truncate_date", "unit": "day"},
		{"kind": "round", "n": "2"},
		{"kind": "redact", "when": 1},
	] {
		d := masked({"amount": m})
		not d.allowed
	}
}

test_demo_agreements_use_every_mask_kind if {
	used := {m.kind | some a in data.agreements; some ds in a.datasets; some _, m in ds.masks}
	used == data.gateway.mask_kinds
}
