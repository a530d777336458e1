-- Coffer PostgreSQL benchmark database (bench/cmd/coffer-pgbench).
-- psql -v scale=1 -v seed=1 -f gen.sql: about 1 GiB (pg_database_size) at
-- scale 1, deterministic for a seed on one server version: rows come from
-- random() after setseed, in one session, in a fixed order.
\set ON_ERROR_STOP on
SELECT setseed(:seed / 1000.0);

CREATE TABLE customers (
	id bigint PRIMARY KEY,
	name text NOT NULL,
	email text NOT NULL,
	city text,
	created timestamptz NOT NULL,
	tier smallint NOT NULL,
	profile jsonb
);
CREATE TABLE orders (
	id bigint PRIMARY KEY,
	customer_id bigint NOT NULL,
	placed timestamptz NOT NULL,
	status text NOT NULL,
	amount numeric(12,2) NOT NULL,
	note text
);
CREATE TABLE documents (
	id bigint PRIMARY KEY,
	customer_id bigint NOT NULL,
	title text NOT NULL,
	body text NOT NULL,
	updated timestamptz NOT NULL
);
CREATE TABLE events (
	id bigserial PRIMARY KEY,
	at timestamptz NOT NULL,
	kind text NOT NULL,
	payload jsonb NOT NULL
);

INSERT INTO customers
SELECT i, 'customer ' || i || ' ' || md5(random()::text), 'c' || i || '@example.com',
	(ARRAY['Lyon', 'Berlin', 'Osaka', 'Lima', 'Oslo', 'Quito', 'Perth'])[1 + (random() * 6)::int],
	'2015-01-01+00'::timestamptz + random() * interval '3000 days', (random() * 4)::int,
	jsonb_build_object('newsletter', random() < 0.5, 'score', round((random() * 1000)::numeric, 2), 'tags', jsonb_build_array(md5(random()::text), (random() * 100)::int))
FROM generate_series(1, (1000000 * :scale)::int) i;

INSERT INTO orders
SELECT i, 1 + (random() * (1000000 * :scale - 1))::bigint, '2018-01-01+00'::timestamptz + i * interval '20 seconds',
	(ARRAY['new', 'paid', 'shipped', 'delivered', 'returned'])[1 + (random() * 4)::int], round((random() * 500)::numeric, 2),
	CASE WHEN random() < 0.3 THEN 'gift ' || md5(random()::text) END
FROM generate_series(1, (3500000 * :scale)::int) i;

INSERT INTO documents
SELECT i, 1 + (random() * (1000000 * :scale - 1))::bigint, 'document ' || i,
	(SELECT string_agg(md5(random()::text || i || k), ' ') FROM generate_series(1, 60 + (random() * 120)::int) k),
	'2020-01-01+00'::timestamptz + random() * interval '1500 days'
FROM generate_series(1, (60000 * :scale)::int) i;

INSERT INTO events (at, kind, payload)
SELECT '2023-01-01+00'::timestamptz + i * interval '3 seconds', (ARRAY['login', 'view', 'cart', 'buy'])[1 + (random() * 3)::int],
	jsonb_build_object('session', md5(random()::text), 'n', i, 'ms', (random() * 900)::int)
FROM generate_series(1, (1200000 * :scale)::int) i;

CREATE INDEX orders_customer ON orders (customer_id);
CREATE INDEX orders_placed ON orders (placed);
CREATE INDEX customers_email ON customers (email);
CREATE INDEX documents_customer ON documents (customer_id);
CREATE INDEX events_at ON events (at);
VACUUM ANALYZE;
