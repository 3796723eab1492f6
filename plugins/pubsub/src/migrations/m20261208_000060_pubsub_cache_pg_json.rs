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
//!   (`January 8`, `today`, `epoch`) and depends on `DateStyle` and `TimeZone`. Its
//!   patterns are only matched (`~`), never captured: PostgreSQL's regular
//!   expressions with optional capturing groups cost ten times more.
//! * `perch_json_str(jsonb)`: the text SQLite gives a JSON value (`json_extract`'s,
//!   as `lower` and `instr` see it): true is `1`, null is NULL.
//! * `perch_json_key(jsonb)`: a value as compared and sorted (SQLite's
//!   `CASE typeof … COALESCE(julianday(e), e)`), a `perch_json_key` `(num, txt)`:
//!   numbers, booleans and dates in `num`, other text (and arrays and objects, as
//!   JSON text) in `txt` (`COLLATE "C"`: by bytes); NULL for no value. Composite
//!   values compare field by field with a NULL field after any other, so a number
//!   comes before any text, as in SQLite; one call per item, for a filter or a sort.
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
    ws constant text := ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13);
    s text := t;
    y int := 2000; mo int := 1; dd int := 1;
    h int; mi int; sec int := 0; frac double precision := 0; tz int := 0;
    digits text;
    a int;
    ms bigint;
    r numeric;
BEGIN
    -- Most texts are no date: only these can start one.
    IF t IS NULL OR left(t, 1) !~ '[-+.0-9 \t\n\v\f\rnNsS]' THEN
        RETURN NULL;
    END IF;
    -- SQLite's forms (its date.c): YYYY-MM-DD then any spaces or Ts and an optional
    -- time; a time alone (on 2000-01-01); now; a number (a Julian day).
    IF t ~ '^-?[0-9]{4}-[0-9]{2}-[0-9]{2}' THEN
        s := substr(t, CASE WHEN left(t, 1) = '-' THEN 2 ELSE 1 END);
        y := left(s, 4)::int * CASE WHEN left(t, 1) = '-' THEN -1 ELSE 1 END;
        mo := substr(s, 6, 2)::int;
        dd := substr(s, 9, 2)::int;
        s := ltrim(substr(s, 11), ws || 'T');
        IF mo NOT BETWEEN 1 AND 12 OR dd NOT BETWEEN 1 AND 31 OR y < -4713 THEN
            RETURN NULL;
        END IF;
    ELSIF lower(t) IN ('now', 'subsec', 'subsecond') THEN
        ms := floor(extract(epoch FROM statement_timestamp()) * 1000)::bigint
            + 210866760000000;
        RETURN ms / 86400000.0::double precision;
    ELSIF t !~ '^[0-9]{2}:[0-9]{2}' THEN
        IF t !~ '^[ \t\n\v\f\r]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t\n\v\f\r]*$' THEN
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
        -- Below 1e-300 it is 0 (its double would underflow).
        ms := CASE WHEN r < 1e-300 THEN 0
            ELSE floor(r::double precision * 86400000.0 + 0.5)::bigint END;
        RETURN ms / 86400000.0::double precision;
    END IF;
    IF s <> '' THEN
        -- HH:MM[:SS[.fff]], then spaces, Z or ±HH:MM, spaces.
        IF s !~ '^[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?[ \t\n\v\f\r]*([Zz]|[+-][0-9]{2}:[0-9]{2})?[ \t\n\v\f\r]*$' THEN
            RETURN NULL;
        END IF;
        h := left(s, 2)::int;
        mi := substr(s, 4, 2)::int;
        s := substr(s, 6);
        IF left(s, 1) = ':' THEN
            sec := substr(s, 2, 2)::int;
            s := substr(s, 4);
            IF left(s, 1) = '.' THEN
                digits := substring(s FROM '^\.([0-9]+)');
                s := substr(s, length(digits) + 2);
                digits := left(digits, 15);
                -- SQLite stops at 0.999 (no rounding up to the next second).
                frac := least(digits::double precision / 10::double precision ^ length(digits), 0.999);
            END IF;
        END IF;
        s := btrim(s, ws);
        IF s ~ '^[+-]' THEN
            IF substr(s, 2, 2)::int > 14 OR substr(s, 5, 2)::int > 59 THEN
                RETURN NULL;
            END IF;
            tz := (substr(s, 2, 2)::int * 60 + substr(s, 5, 2)::int)
                * CASE left(s, 1) WHEN '-' THEN -1 ELSE 1 END;
        END IF;
        IF h > 24 OR mi > 59 OR sec > 59 THEN
            RETURN NULL;
        END IF;
    END IF;
    -- SQLite's computeJD: Meeus' formula in integers, in milliseconds.
    IF mo <= 2 THEN
        y := y - 1;
        mo := mo + 12;
    END IF;
    a := (y + 4800) / 100;
    ms := (36525 * (y + 4716) / 100 + 306001 * (mo + 1) / 10000 + dd + 38 - a + a / 4)::bigint
        * 86400000 - 131716800000;
    IF h IS NOT NULL THEN
        ms := ms + h * 3600000 + mi * 60000 + floor((sec + frac) * 1000 + 0.5)::bigint
            - tz * 60000;
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

CREATE TYPE perch_json_key AS (num numeric, txt text COLLATE "C");

CREATE FUNCTION perch_json_key(j jsonb) RETURNS perch_json_key
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    k perch_json_key;
    jd double precision;
BEGIN
    CASE jsonb_typeof(j)
        WHEN 'number' THEN k.num := j::numeric;
        WHEN 'boolean' THEN k.num := CASE WHEN j = 'true'::jsonb THEN 1 ELSE 0 END;
        WHEN 'string' THEN
            k.txt := j #>> '{}';
            jd := perch_julianday(k.txt);
            IF jd IS NOT NULL THEN
                k.num := jd::numeric;
                k.txt := NULL;
            END IF;
        WHEN 'array', 'object' THEN k.txt := j::text;
        ELSE RETURN NULL;
    END CASE;
    RETURN k;
END $$;

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
DROP FUNCTION IF EXISTS perch_json_key(jsonb);
DROP TYPE IF EXISTS perch_json_key;
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
