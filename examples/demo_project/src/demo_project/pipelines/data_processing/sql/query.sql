-- Raw shuttle rows for pipeline 'data_processing'.
SELECT id AS internal_id,
       shuttle_type,
       engines,
       passenger_capacity,
       price
FROM shuttles
WHERE price IS NOT NULL;
