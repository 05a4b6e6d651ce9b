-- An unknown table lists what the council has.
SELECT * FROM fife.spend
