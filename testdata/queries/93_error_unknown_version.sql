-- A version the dataset does not have is named with the ones it has.
SELECT * FROM std.spend_over_500_v7
