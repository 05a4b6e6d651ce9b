-- Dates parsed from each council's local format compare correctly: decisions
-- come five to thirteen weeks after the application was received.
SELECT council, min(decision_date - received_date) AS fastest_days, max(decision_date - received_date) AS slowest_days
FROM std.planning_applications WHERE decision IN ('grant', 'refuse', 'split') GROUP BY council ORDER BY council
