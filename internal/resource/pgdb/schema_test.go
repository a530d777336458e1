package pgdb_test

import "fmt"

// readerRole is granted privileges by richSchema; servers that restore it
// need it.
const readerRole = "coffer_reader"

// richSchema is a database with every kind of object a dump carries and
// rows of many types: customers (rows/4 rows, every type), orders (the
// rest; a trigger audits new ones), partitions, a table without primary
// key, an unlogged table, quoted names, large objects, sequences, views,
// a materialized view, functions, comments and grants. Rows are
// deterministic functions of their number.
func richSchema(rows int) string {
	customers := max(rows/4, 1)
	orders := max(rows-customers-3*max(rows/100, 1), 1)
	small := max(rows/100, 1)
	return fmt.Sprintf(`
CREATE SCHEMA app;
COMMENT ON SCHEMA app IS 'application schema';
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy', 'ünï 😀');
CREATE TYPE app.pair AS (a int, b text);
CREATE DOMAIN app.posint AS int CHECK (VALUE > 0);
CREATE SEQUENCE app.ticket_seq START 1000 INCREMENT 7;
CREATE TABLE app.customers (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL,
	email text UNIQUE,
	mood app.mood,
	balance numeric(20,6) NOT NULL DEFAULT 0 CHECK (balance > -1000000),
	created timestamptz NOT NULL,
	tags text[],
	profile jsonb,
	avatar bytea,
	active tstzrange,
	score double precision,
	ratio real,
	born date,
	wake time,
	nap interval,
	ip inet,
	uid uuid,
	flags bit varying(16),
	ticket bigint DEFAULT nextval('app.ticket_seq'),
	doc oid,
	name_upper text GENERATED ALWAYS AS (upper(name)) STORED,
	pair app.pair,
	points int4range,
	small app.posint,
	big numeric
);
COMMENT ON TABLE app.customers IS 'Customers — ünïcødé comment';
COMMENT ON COLUMN app.customers.email IS 'unique e-mail';
INSERT INTO app.customers (name, email, mood, balance, created, tags, profile, avatar, active, score, ratio, born, wake, nap, ip, uid, flags, pair, points, small, big)
SELECT CASE WHEN i %% 13 = 0 THEN E'multi\nline\ttab \\ back ' || i ELSE 'ünïcødé ✓ 漢字 ' || i END,
	'c' || i || '@example.com',
	(ARRAY['sad','ok','happy','ünï 😀']::app.mood[])[1 + i %% 4],
	round((i * 1.234567)::numeric, 6) - 500,
	'2020-01-01 00:00:00+00'::timestamptz + i * interval '37 seconds',
	CASE WHEN i %% 11 = 0 THEN NULL ELSE ARRAY['t' || (i %% 5), 'x"y,z', NULL] END,
	jsonb_build_object('i', i, 'tags', jsonb_build_array('a', i %% 7), 'nested', jsonb_build_object('x', i * 1.5, 's', 'ü"\')),
	decode(md5(i::text), 'hex') || '\x00ff'::bytea,
	tstzrange('2021-01-01+00'::timestamptz + i * interval '1 minute', '2021-01-01+00'::timestamptz + i * interval '2 minutes'),
	CASE i %% 17 WHEN 0 THEN 'NaN'::float8 WHEN 1 THEN 'Infinity' WHEN 2 THEN '-0' ELSE i / 3.0 END,
	(i %% 1000) / 7.0,
	'1950-01-01'::date + i %% 20000,
	'00:00'::time + i * interval '1 second',
	i * interval '1 minute 3 seconds',
	('10.' || (i %% 250) || '.' || (i / 250 %% 250) || '.1')::inet,
	md5(i::text)::uuid,
	(i %% 65536)::bit(16)::varbit,
	ROW(i, 'p' || i)::app.pair,
	int4range(i, i + 10),
	1 + i %% 100,
	(i::numeric ^ 3) / 7
FROM generate_series(1, %[1]d) i;
CREATE INDEX customers_created ON app.customers (created);
CREATE INDEX customers_profile ON app.customers USING gin (profile);
CREATE INDEX customers_lower_name ON app.customers (lower(name));

CREATE TABLE app.orders (
	id serial PRIMARY KEY,
	customer_id bigint NOT NULL REFERENCES app.customers (id) ON DELETE CASCADE,
	amount numeric(12,2) NOT NULL CHECK (amount >= 0),
	placed timestamptz NOT NULL DEFAULT now(),
	note text
);
INSERT INTO app.orders (customer_id, amount, placed, note)
SELECT 1 + i %% %[1]d, (i %% 100000) / 100.0, '2022-01-01+00'::timestamptz + i * interval '11 seconds',
	CASE WHEN i %% 3 = 0 THEN NULL ELSE 'note ' || md5(i::text) END
FROM generate_series(1, %[2]d) i;
CREATE INDEX orders_customer ON app.orders (customer_id);
CREATE TABLE app.audit (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), what text);
CREATE FUNCTION app.audit_order() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
	INSERT INTO app.audit (what) VALUES ('order ' || NEW.id);
	RETURN NEW;
END $f$;
COMMENT ON FUNCTION app.audit_order() IS 'audits new orders';
CREATE TRIGGER orders_audit AFTER INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.audit_order();
CREATE FUNCTION app.total(c bigint) RETURNS numeric LANGUAGE sql STABLE AS 'SELECT coalesce(sum(amount), 0) FROM app.orders WHERE customer_id = c';
CREATE VIEW app.big_spenders AS
	SELECT c.id, c.name, sum(o.amount) AS total FROM app.customers c JOIN app.orders o ON o.customer_id = c.id GROUP BY c.id, c.name;
CREATE MATERIALIZED VIEW app.order_counts AS SELECT customer_id, count(*) AS n FROM app.orders GROUP BY customer_id;

CREATE TABLE app.parted (id int, region text, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE app.parted_eu PARTITION OF app.parted FOR VALUES IN ('eu');
CREATE TABLE app.parted_us PARTITION OF app.parted FOR VALUES IN ('us');
INSERT INTO app.parted SELECT i, CASE WHEN i %% 2 = 0 THEN 'eu' ELSE 'us' END, 'v' || i FROM generate_series(1, %[3]d) i;
CREATE TABLE public.nopk (a int, b text, c bytea);
INSERT INTO public.nopk SELECT i %% 10, repeat('b', i %% 50), '\x0102'::bytea FROM generate_series(1, %[3]d) i;
CREATE UNLOGGED TABLE app.cache (k text PRIMARY KEY, v text);
INSERT INTO app.cache SELECT 'k' || i, 'v' || i FROM generate_series(1, %[3]d) i;
CREATE SCHEMA "Mixed Case";
CREATE TABLE "Mixed Case"."Tab/le.1 ""q""" (id int PRIMARY KEY, "Col ""q"" %%" text);
INSERT INTO "Mixed Case"."Tab/le.1 ""q""" VALUES (1, 'a'), (2, NULL), (3, E'\\N');
CREATE TABLE app.empty (id int PRIMARY KEY);

SELECT lo_from_bytea(0, convert_to(repeat('large object ' || i || ' ', 1000 * i), 'UTF8')) FROM generate_series(1, 3) i;
SELECT lo_from_bytea(0, ''::bytea);
UPDATE app.customers SET doc = (SELECT min(oid) FROM pg_largeobject_metadata) WHERE id = 1;
DO $d$ BEGIN EXECUTE format('COMMENT ON LARGE OBJECT %%s IS %%L', (SELECT min(oid) FROM pg_largeobject_metadata), 'first document'); END $d$;
SELECT setval('app.ticket_seq', 5000);

GRANT USAGE ON SCHEMA app TO %[4]s;
GRANT SELECT ON app.customers TO %[4]s;
GRANT SELECT (id, amount) ON app.orders TO %[4]s;
GRANT EXECUTE ON FUNCTION app.total(bigint) TO %[4]s;
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO %[4]s;
ANALYZE;
`, customers, orders, small, readerRole)
}
