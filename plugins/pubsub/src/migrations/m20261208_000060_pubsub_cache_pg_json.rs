//! PostgreSQL's functions for the cache's field filters and ordering by a field
//! (`pubsub_cache::filters_pg`): SQLite's comparison rules, written once in the
//! database. On SQLite this migration does nothing (its SQL uses SQLite's own
//! `json_extract`, `json_each`, `julianday`).
//!
//! Why functions: SQLite compares a parsed field by value with rules of its own —
//! a number before any text, text by its bytes, a text that `julianday` reads as an
//! instant — and the search must find the same items on both engines. Each rule is
//! one function here, so the statements `filters_pg` builds stay short and a field's
//! path is bound once per use:
//!
//! * `perch_julianday(text)`: SQLite's `julianday` of a text, or NULL, never an
//!   error. It reads what SQLite's date parser reads (`YYYY-MM-DD`, then any spaces
//!   or `T`s and `HH:MM[:SS[.fff]]`, an optional `Z` or `±HH:MM`; a time alone, on
//!   2000-01-01; a number, as a Julian day in 0..5373484.5; `now`) and computes the
//!   day as SQLite does (its integer formula, milliseconds, the same range), so dates
//!   compare the same. PostgreSQL's own date input is not used: it reads far more
//!   (`January 8`, `today`, `epoch`) and depends on `DateStyle` and `TimeZone`.
//! * `perch_json_str(jsonb)`: the text SQLite gives a JSON value (`json_extract`'s,
//!   as `lower` and `instr` see it): true is `1`, null is NULL.
//! * `perch_json_num` / `perch_json_text`: a value as compared and sorted (SQLite's
//!   `CASE typeof … COALESCE(julianday(e), e)`): numbers, booleans and dates as a
//!   number, other text (and arrays and objects, as JSON text) as text.
//! * `perch_json_cmp(a, b)`: -1, 0, 1 or NULL, numbers before text, text by bytes.
//! * `perch_json_raw_eq(a, b)`: SQLite's plain `=` (for `in`, `overlap`, `contains`):
//!   a number equals a number, a text a text, never one the other.
//! * `perch_json_lower(jsonb)`: the value's text lowered as SQLite's `lower` does
//!   (ASCII only: `COLLATE "C"`), as a JSON string.
//! * `perch_json_each(jsonb)`: what `json_each` walks: an array's elements, an
//!   object's values, or the value itself.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
CREATE FUNCTION perch_julianday(t text) RETURNS double precision
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    sp constant text := '[ \t\n\v\f\r]';
    d text[];
    tm text[];
    y int := 2000; mo int := 1; dd int := 1;
    a int;
    ms bigint;
    r numeric;
BEGIN
    IF t IS NULL THEN
        RETURN NULL;
    END IF;
    -- SQLite's forms (its date.c): YYYY-MM-DD then any spaces or Ts and an optional
    -- time; a time alone (on 2000-01-01); now; a number (a Julian day).
    d := regexp_match(t, '^(-?[0-9]{4})-([0-9]{2})-([0-9]{2})[ \t\n\v\f\rT]*(.*)$');
    tm := regexp_match(coalesce(d[4], t),
        '^([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?' || sp || '*'
        || '(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))?' || sp || '*$');
    IF d IS NOT NULL THEN
        y := d[1]::int; mo := d[2]::int; dd := d[3]::int;
        IF mo NOT BETWEEN 1 AND 12 OR dd NOT BETWEEN 1 AND 31 OR y < -4713
           OR (d[4] <> '' AND tm IS NULL) THEN
            RETURN NULL;
        END IF;
    ELSIF tm IS NULL THEN
        IF lower(t) IN ('now', 'subsec', 'subsecond') THEN
            ms := floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint
                + 210866760000000;
            RETURN ms / 86400000.0::double precision;
        END IF;
        IF t !~ ('^' || sp || '*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?' || sp || '*$') THEN
            RETURN NULL;
        END IF;
        BEGIN
            r := t::numeric;
        EXCEPTION WHEN OTHERS THEN
            RETURN NULL;
        END;
        IF r < 0 OR r >= 5373484.5 THEN
            RETURN NULL;
        END IF;
        -- Below a millisecond's 1e-300th it is 0 (its double would underflow).
        ms := CASE WHEN r < 1e-300 THEN 0
            ELSE floor(r::double precision * 86400000.0 + 0.5)::bigint END;
        RETURN ms / 86400000.0::double precision;
    END IF;
    -- SQLite's computeJD: Meeus' formula in integers, in milliseconds.
    IF mo <= 2 THEN
        y := y - 1;
        mo := mo + 12;
    END IF;
    a := (y + 4800) / 100;
    ms := (36525 * (y + 4716) / 100 + 306001 * (mo + 1) / 10000 + dd + 38 - a + a / 4)::bigint
        * 86400000 - 131716800000;
    IF tm IS NOT NULL THEN
        IF tm[1]::int > 24 OR tm[2]::int > 59 OR coalesce(tm[3], '0')::int > 59
           OR coalesce(tm[6], '0')::int > 14 OR coalesce(tm[7], '0')::int > 59 THEN
            RETURN NULL;
        END IF;
        ms := ms + tm[1]::int * 3600000 + tm[2]::int * 60000
            + floor((coalesce(tm[3], '0')::int + least(coalesce(
                left(tm[4], 15)::double precision / 10::double precision ^ length(left(tm[4], 15)),
                0), 0.999)) * 1000 + 0.5)::bigint
            - CASE tm[5] WHEN '-' THEN -1 ELSE 1 END
              * (coalesce(tm[6], '0')::int * 60 + coalesce(tm[7], '0')::int) * 60000;
    END IF;
    IF ms < 0 OR ms > 464269060799999 THEN
        RETURN NULL;
    END IF;
    RETURN ms / 86400000.0::double precision;
END $$;

CREATE FUNCTION perch_json_str(j jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(j)
        WHEN 'string' THEN j #>> '{}'
        WHEN 'boolean' THEN CASE WHEN j = 'true'::jsonb THEN '1' ELSE '0' END
        WHEN 'null' THEN NULL
        ELSE j::text
    END
$$;

CREATE FUNCTION perch_json_num(j jsonb) RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(j)
        WHEN 'number' THEN j::numeric
        WHEN 'boolean' THEN CASE WHEN j = 'true'::jsonb THEN 1 ELSE 0 END
        WHEN 'string' THEN perch_julianday(j #>> '{}')::numeric
    END
$$;

CREATE FUNCTION perch_json_text(j jsonb) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(j)
        WHEN 'string' THEN CASE WHEN perch_julianday(j #>> '{}') IS NULL THEN j #>> '{}' END
        WHEN 'array' THEN j::text
        WHEN 'object' THEN j::text
    END
$$;

CREATE FUNCTION perch_json_cmp(a jsonb, b jsonb) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN na IS NOT NULL AND nb IS NOT NULL THEN sign(na - nb)::integer
        WHEN na IS NOT NULL AND tb IS NOT NULL THEN -1
        WHEN ta IS NOT NULL AND nb IS NOT NULL THEN 1
        WHEN ta IS NOT NULL AND tb IS NOT NULL THEN
            CASE WHEN ta < tb THEN -1 WHEN ta = tb THEN 0 ELSE 1 END
    END
    FROM (SELECT perch_json_num(a) AS na, perch_json_num(b) AS nb,
                 perch_json_text(a) COLLATE "C" AS ta, perch_json_text(b) COLLATE "C" AS tb) v
$$;

CREATE FUNCTION perch_json_raw_eq(a jsonb, b jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN coalesce(jsonb_typeof(a), 'null') = 'null'
            OR coalesce(jsonb_typeof(b), 'null') = 'null' THEN NULL
        WHEN jsonb_typeof(a) IN ('number', 'boolean') AND jsonb_typeof(b) IN ('number', 'boolean')
            THEN perch_json_str(a)::numeric = perch_json_str(b)::numeric
        WHEN jsonb_typeof(a) IN ('number', 'boolean') OR jsonb_typeof(b) IN ('number', 'boolean')
            THEN false
        ELSE perch_json_str(a) = perch_json_str(b)
    END
$$;

CREATE FUNCTION perch_json_lower(j jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_jsonb(lower(perch_json_str(j) COLLATE "C"))
$$;

CREATE FUNCTION perch_json_each(j jsonb) RETURNS SETOF jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT value FROM jsonb_array_elements(CASE jsonb_typeof(j) WHEN 'array' THEN j END)
    UNION ALL
    SELECT value FROM jsonb_each(CASE jsonb_typeof(j) WHEN 'object' THEN j END)
    UNION ALL
    SELECT j WHERE jsonb_typeof(j) NOT IN ('array', 'object')
$$;
"#;

const DOWN: &str = "DROP FUNCTION IF EXISTS perch_json_each(jsonb);
DROP FUNCTION IF EXISTS perch_json_lower(jsonb);
DROP FUNCTION IF EXISTS perch_json_raw_eq(jsonb, jsonb);
DROP FUNCTION IF EXISTS perch_json_cmp(jsonb, jsonb);
DROP FUNCTION IF EXISTS perch_json_text(jsonb);
DROP FUNCTION IF EXISTS perch_json_num(jsonb);
DROP FUNCTION IF EXISTS perch_json_str(jsonb);
DROP FUNCTION IF EXISTS perch_julianday(text);";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(UP).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(DOWN).await?;
        }
        Ok(())
    }
}
