-- Writes are refused before anything runs.
DELETE FROM glasgow.spend
