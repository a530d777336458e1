-- One day of changes to the benchmark database (bench/cmd/coffer-pgbench):
-- psql -v seed=1 -v day=N -v mode=mixed -f mutate.sql changes 1 % of the
-- rows of every table, deterministically for (seed, day).
--   mixed:   a day of typical traffic: orders mostly recent (status
--            changes of the latest orders, new orders), customers and
--            documents edited anywhere, events appended (old ones purged);
--   uniform: every change is an update of a row chosen uniformly (the
--            worst case for chunk-based deduplication);
--   recent:  every change touches the newest rows or adds rows.
\set ON_ERROR_STOP on
SELECT setseed((:seed * 1000 + :day) / 1000000.0);
\if :{?mode}
\else
\set mode mixed
\endif
SELECT :'mode' = 'uniform' AS uniform, :'mode' = 'recent' AS recent \gset

SELECT max(id) AS omax, count(*) AS o_n FROM orders \gset
SELECT max(id) AS cmax, count(*) AS c_n FROM customers \gset
SELECT max(id) AS dmax, count(*) AS d_n FROM documents \gset
SELECT max(id) AS emax, min(id) AS emin, count(*) AS e_n FROM events \gset

\if :uniform
UPDATE orders SET status = 'updated-' || :day, amount = amount + 1 WHERE id IN (SELECT 1 + (random() * (:omax - 1))::bigint FROM generate_series(1, :o_n / 100));
UPDATE customers SET email = 'u' || :day || '.' || email WHERE id IN (SELECT 1 + (random() * (:cmax - 1))::bigint FROM generate_series(1, :c_n / 100));
UPDATE documents SET body = body || ' edit ' || :day, updated = now() WHERE id IN (SELECT 1 + (random() * (:dmax - 1))::bigint FROM generate_series(1, :d_n / 100));
UPDATE events SET payload = payload || jsonb_build_object('edited', :day) WHERE id IN (SELECT :emin + (random() * (:emax - :emin))::bigint FROM generate_series(1, :e_n / 100));
\elif :recent
UPDATE orders SET status = 'shipped-' || :day WHERE id > :omax - :o_n / 200;
INSERT INTO orders SELECT :omax + i, 1 + (random() * (:cmax - 1))::bigint, now(), 'new', round((random() * 500)::numeric, 2), NULL FROM generate_series(1, :o_n / 200) i;
INSERT INTO customers SELECT :cmax + i, 'customer ' || (:cmax + i), 'n' || (:cmax + i) || '@example.com', 'Oslo', now(), 0, NULL FROM generate_series(1, :c_n / 100) i;
INSERT INTO documents SELECT :dmax + i, 1, 'document ' || (:dmax + i), repeat(md5(random()::text) || ' ', 100), now() FROM generate_series(1, :d_n / 100) i;
INSERT INTO events (at, kind, payload) SELECT now(), 'view', jsonb_build_object('n', i) FROM generate_series(1, :e_n / 100) i;
\else
-- mixed: orders 0.6 % status changes among the newest 5 %, 0.1 % anywhere,
-- 0.3 % new; customers 0.8 % edited anywhere, 0.2 % new; documents 1 %
-- edited anywhere; events 1 % appended, as many of the oldest purged.
UPDATE orders SET status = 'shipped-' || :day WHERE id IN (SELECT :omax - (random() * (:o_n / 20))::bigint FROM generate_series(1, :o_n * 6 / 1000));
UPDATE orders SET note = 'claim ' || :day WHERE id IN (SELECT 1 + (random() * (:omax - 1))::bigint FROM generate_series(1, :o_n / 1000));
INSERT INTO orders SELECT :omax + i, 1 + (random() * (:cmax - 1))::bigint, now(), 'new', round((random() * 500)::numeric, 2), NULL FROM generate_series(1, :o_n * 3 / 1000) i;
UPDATE customers SET city = 'Moved ' || :day WHERE id IN (SELECT 1 + (random() * (:cmax - 1))::bigint FROM generate_series(1, :c_n * 8 / 1000));
INSERT INTO customers SELECT :cmax + i, 'customer ' || (:cmax + i), 'n' || (:cmax + i) || '@example.com', 'Oslo', now(), 0, NULL FROM generate_series(1, :c_n * 2 / 1000) i;
UPDATE documents SET body = body || ' edit ' || :day, updated = now() WHERE id IN (SELECT 1 + (random() * (:dmax - 1))::bigint FROM generate_series(1, :d_n / 100));
INSERT INTO events (at, kind, payload) SELECT now(), 'view', jsonb_build_object('n', i, 'day', :day) FROM generate_series(1, :e_n / 100) i;
DELETE FROM events WHERE id < :emin + :e_n / 100;
\endif
VACUUM ANALYZE;
