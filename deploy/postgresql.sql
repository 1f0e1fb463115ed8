-- The PostgreSQL role and database for smsgate. Run once as the superuser:
--   sudo -u postgres psql -v password="'a-long-password'" -f deploy/postgresql.sql
-- Optional: -v role=smsgate -v dbname=smsgate (the defaults).
-- Then SMSGATE_DATABASE_URL=postgresql+psycopg://smsgate:a-long-password@127.0.0.1/smsgate
-- and `smsgate init` (as that role: it owns the schema and creates the indexes).
--
-- Collation: region filters are prefix lookups (station_id LIKE '6371%'); `smsgate init`
-- creates varchar_pattern_ops indexes for them, which work under any collation. C.UTF-8
-- keeps byte order for codes and accepts every character of Indonesian names.
\set ON_ERROR_STOP on
\if :{?role}
\else
  \set role smsgate
\endif
\if :{?dbname}
\else
  \set dbname smsgate
\endif
\if :{?password}
\else
  \echo 'give the password: psql -v password="''...''" -f deploy/postgresql.sql'
  \quit
\endif

CREATE ROLE :"role" LOGIN PASSWORD :password;
CREATE DATABASE :"dbname" OWNER :"role" ENCODING 'UTF8' LOCALE 'C.UTF-8' TEMPLATE template0;
\connect :"dbname"
-- Trigram search for the dashboard's message log (trusted since PostgreSQL 13; created here
-- so that `init` need not be a superuser on servers where the extension is not trusted).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
-- Nobody else may create objects in the public schema (PostgreSQL 15 default, made explicit).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT ALL ON SCHEMA public TO :"role";
