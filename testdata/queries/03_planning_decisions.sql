-- Each council's own words for status and decision map onto the codelists.
SELECT council, status, decision, count(*) AS n
FROM std.planning_applications GROUP BY ALL ORDER BY ALL
