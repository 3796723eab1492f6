//! Timestamps: microseconds since the Unix epoch in storage, RFC 3339 on the bridge.
//!
//! Why our own reader and writer rather than humantime's: timestamps come from
//! strangers (a message's XEP-0203 delay stamp, a frontend's history filter) and from
//! stored rows, and neither may be able to stop a profile. humantime's writer panics
//! before 1970 and after 9999, and its reader refuses the UTC offsets that XEP-0082
//! allows. Here both are total over one range, [`MIN_MICROS`] ..= [`MAX_MICROS`]
//! (0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z, the years RFC 3339 can
//! write with four digits): [`parse`] never returns a value outside it, and
//! [`rfc3339`] writes any `i64`, clamping one outside it to the nearest end (a
//! corrupt or hostile stored value then reads as year 1 or 9999, never as a crash).
//! Every value in the range survives `parse(&rfc3339(m)) == Some(m)`.

use std::time::{SystemTime, UNIX_EPOCH};

/// 0001-01-01T00:00:00Z.
pub const MIN_MICROS: i64 = -62_135_596_800 * MICROS_PER_SEC;
/// 9999-12-31T23:59:59.999999Z.
pub const MAX_MICROS: i64 = 253_402_300_800 * MICROS_PER_SEC - 1;

const MICROS_PER_SEC: i64 = 1_000_000;
const SECS_PER_DAY: i64 = 86_400;

pub fn now_micros() -> i64 {
    to_micros(SystemTime::now())
}

pub fn to_micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// `micros` brought into [`MIN_MICROS`] ..= [`MAX_MICROS`].
pub fn clamp(micros: i64) -> i64 {
    micros.clamp(MIN_MICROS, MAX_MICROS)
}

/// `2026-11-23T08:00:00.123456Z`; a value outside the range is written as its
/// nearest end (see the module doc).
pub fn rfc3339(micros: i64) -> String {
    let m = clamp(micros);
    let secs = m.div_euclid(MICROS_PER_SEC);
    let frac = m.rem_euclid(MICROS_PER_SEC);
    let days = secs.div_euclid(SECS_PER_DAY);
    let of_day = secs.rem_euclid(SECS_PER_DAY);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// Parses RFC 3339 / XEP-0082 (`2026-11-23T08:00:00Z`, fractional seconds, a `±hh:mm`
/// offset; as humantime did, a space for the `T` and no zone, read as UTC, are
/// accepted) or decimal Unix seconds (`1795000000`, `-1.5`, `1795000000.123456`).
/// Digits past the microsecond are dropped. `None` for anything else, and for any
/// time outside [`MIN_MICROS`] ..= [`MAX_MICROS`].
pub fn parse(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    let m = if b.len() >= 19 && b[4] == b'-' {
        parse_rfc3339(b)?
    } else {
        parse_unix(b)?
    };
    (MIN_MICROS..=MAX_MICROS).contains(&m).then_some(m)
}

/// Parses an XEP-0082 DateTime only (RFC 3339, as [`parse`] reads it, but no Unix
/// seconds): what a stanza's timestamp must be. `None` outside the range.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.trim().as_bytes();
    (b.len() >= 19 && b[4] == b'-')
        .then(|| parse_rfc3339(b))
        .flatten()
        .filter(|m| (MIN_MICROS..=MAX_MICROS).contains(m))
}

/// `[+-]digits[.digits]` exactly (no float on the way: every microsecond of the range
/// reads back as written).
fn parse_unix(b: &[u8]) -> Option<i64> {
    let (neg, b) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, b),
    };
    let (int, frac) = match b.iter().position(|&c| c == b'.') {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    if int.is_empty() && frac.is_none_or(<[u8]>::is_empty) {
        return None;
    }
    // Saturates far beyond the range: any number of digits is read, none overflows.
    let mut secs: i64 = 0;
    for &c in int {
        secs = secs
            .saturating_mul(10)
            .saturating_add(i64::from(digit(c)?))
            .min(i64::MAX / MICROS_PER_SEC / 2);
    }
    let micros = secs * MICROS_PER_SEC + fraction(frac.unwrap_or_default())?;
    Some(if neg { -micros } else { micros })
}

/// RFC 3339 date-time: `YYYY-MM-DD[Tt ]hh:mm:ss[.f+][Zz|±hh:mm]`, the zone optional.
fn parse_rfc3339(b: &[u8]) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter()
            .try_fold(0i64, |n, &c| Some(n * 10 + i64::from(digit(c)?)))
    };
    if b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, mut sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
        return None;
    }
    match sec {
        0..=59 => {}
        // A leap second: the last second of the minute, as humantime read it.
        60 => sec = 59,
        _ => return None,
    }
    let mut rest = &b[19..];
    let mut frac = 0;
    if let Some(f) = rest.strip_prefix(b".") {
        let n = f.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        frac = fraction(&f[..n])?;
        rest = &f[n..];
    }
    let offset_secs = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (oh, om) = (
                i64::from(digit(*h1)? * 10 + digit(*h2)?),
                i64::from(digit(*m1)? * 10 + digit(*m2)?),
            );
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * SECS_PER_DAY + h * 3600 + mi * 60 + sec - offset_secs;
    Some(secs * MICROS_PER_SEC + frac)
}

fn digit(c: u8) -> Option<u32> {
    char::from(c).to_digit(10)
}

/// Fractional-second digits as microseconds, those past the sixth dropped.
fn fraction(f: &[u8]) -> Option<i64> {
    let mut micros = 0;
    for (i, &c) in f.iter().enumerate() {
        let d = i64::from(digit(c)?);
        if i < 6 {
            micros += d * 10i64.pow(5 - i as u32);
        }
    }
    Some(micros)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day counted from 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = 1_795_000_000_123_456;
        let s = rfc3339(m);
        assert_eq!(s, "2026-11-18T11:06:40.123456Z");
        assert_eq!(parse(&s), Some(m));
        assert_eq!(parse("1795000000"), Some(1_795_000_000_000_000));
        assert_eq!(parse("2026-11-18T11:06:40Z"), Some(1_795_000_000_000_000));
        assert_eq!(parse("yesterday"), None);
    }

    /// Issue 11: `<delay stamp='-1'/>` and `stamp='1e12'` crashed a profile's inbox
    /// when the stored time was written (humantime panics outside 1970..=9999).
    #[test]
    fn out_of_range_values_are_written_clamped() {
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339(-1_000_000), "1969-12-31T23:59:59.000000Z");
        assert_eq!(rfc3339(i64::MIN), "0001-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59.999999Z");
        assert_eq!(rfc3339(1_000_000_000_000 * 1_000_000), rfc3339(i64::MAX));
        assert_eq!(rfc3339(MIN_MICROS), "0001-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
    }

    /// `parse` took any finite float, so 1e300 gave i64::MAX and `rfc3339` then
    /// panicked; seconds past year 9999 or before year 1 are refused now.
    #[test]
    fn out_of_range_input_is_refused() {
        for s in [
            "1e12",
            "1e300",
            "-1e300",
            "NaN",
            "inf",
            "-inf",
            "253402300800",
            "-62135596801",
            "99999999999999999999999999999999999999999999",
            "0000-12-31T23:59:59Z",
            "0001-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59-00:01",
            "",
            ".",
            "-",
            "+.",
            "2026-02-29T00:00:00Z",
            "2026-11-18T24:00:00Z",
            "2026-11-18T11:06:40.Z",
            "2026-11-18T11:06:40+01",
            "2026-11-18T11:06:40Zjunk",
            "2026-11-18T11:06:40é",
        ] {
            assert_eq!(parse(s), None, "{s:?}");
        }
        assert_eq!(parse("253402300799.999999"), Some(MAX_MICROS));
        assert_eq!(parse("-62135596800"), Some(MIN_MICROS));
        assert_eq!(parse("-1"), Some(-1_000_000));
        assert_eq!(parse("-0.5"), Some(-500_000));
        assert_eq!(parse(".5"), Some(500_000));
        assert_eq!(parse("1."), Some(1_000_000));
    }

    /// Floats lost microseconds of large Unix times: `253402300799.999999` read as
    /// `253402300800.000000`, past the range.
    #[test]
    fn unix_seconds_are_read_exactly() {
        assert_eq!(parse("253402300799.999998"), Some(253_402_300_799_999_998));
        assert_eq!(parse("1795000000.1234569"), Some(1_795_000_000_123_456));
        assert_eq!(parse("0001795000000"), Some(1_795_000_000_000_000));
        assert_eq!(
            parse("1795000000.999999999999999999999999999999999999"),
            Some(1_795_000_000_999_999)
        );
        assert_eq!(parse("-0.0000001"), Some(0));
    }

    /// XEP-0082 allows an offset; humantime refused it, so a stamped message took the
    /// time of its arrival.
    #[test]
    fn offsets_and_rfc3339_variants() {
        let utc = Some(1_795_000_000_000_000);
        assert_eq!(parse("2026-11-18T12:06:40+01:00"), utc);
        assert_eq!(parse("2026-11-18T06:36:40-04:30"), utc);
        assert_eq!(parse("2026-11-18t11:06:40z"), utc);
        assert_eq!(parse("2026-11-18 11:06:40"), utc);
        assert_eq!(parse("2026-11-18T11:06:40+00:00"), utc);
        assert_eq!(parse("2026-11-18T11:06:60Z"), Some(1_795_000_019_000_000));
        assert_eq!(parse_datetime("2026-11-18T12:06:40+01:00"), utc);
        assert_eq!(parse_datetime("1795000000"), None);
        assert_eq!(parse_datetime("-1"), None);
        assert_eq!(parse("1969-07-20T20:17:40Z"), Some(-14_182_940_000_000));
        assert_eq!(rfc3339(-14_182_940_000_000), "1969-07-20T20:17:40.000000Z");
    }
}

/// Properties (doc/reliability.rst, "Property tests"): 256 cases each (`PROPTEST_CASES`).
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const MIN_SECS: i64 = MIN_MICROS / MICROS_PER_SEC;
    const MAX_SECS: i64 = MAX_MICROS / MICROS_PER_SEC;
    const DAY: i64 = SECS_PER_DAY * MICROS_PER_SEC;

    proptest! {
        #![proptest_config(crate::testing::proptest_config())]

        /// Any stored value can be written, and what is written reads back clamped.
        #[test]
        fn any_i64_is_written_and_reads_back_clamped(m in any::<i64>()) {
            prop_assert_eq!(parse(&rfc3339(m)), Some(clamp(m)));
        }

        /// Every microsecond of the range survives the round trip.
        #[test]
        fn range_round_trips(m in MIN_MICROS..=MAX_MICROS) {
            prop_assert_eq!(parse(&rfc3339(m)), Some(m));
        }

        /// Where humantime could write, we write what it wrote (the bridge's format).
        #[test]
        fn writes_as_humantime_did(m in 0..=MAX_MICROS) {
            let t = UNIX_EPOCH + std::time::Duration::from_micros(m.unsigned_abs());
            prop_assert_eq!(rfc3339(m), humantime::format_rfc3339_micros(t).to_string());
        }

        /// Unix seconds are read exactly, to the microsecond.
        #[test]
        fn unix_seconds_read_exactly(secs in MIN_SECS..MAX_SECS, frac in 0..MICROS_PER_SEC) {
            let (sign, whole) = if secs < 0 { ("-", -secs - 1) } else { ("", secs) };
            let f = if secs < 0 { MICROS_PER_SEC - frac } else { frac };
            let expected = if secs < 0 { -(whole * MICROS_PER_SEC + f) } else { whole * MICROS_PER_SEC + f };
            prop_assert_eq!(parse(&format!("{sign}{whole}.{f:06}")), Some(expected));
            prop_assert_eq!(parse(&format!("{secs}")), Some(secs * MICROS_PER_SEC));
        }

        /// A `±hh:mm` offset moves the instant by exactly that much.
        #[test]
        fn offsets_shift_the_instant(
            m in (MIN_MICROS + DAY)..=(MAX_MICROS - DAY),
            minutes in -(23 * 60 + 59)..=(23 * 60 + 59i64),
        ) {
            let local = rfc3339(m + minutes * 60 * MICROS_PER_SEC);
            let sign = if minutes < 0 { '-' } else { '+' };
            let a = minutes.abs();
            let text = format!("{}{sign}{:02}:{:02}", local.trim_end_matches('Z'), a / 60, a % 60);
            prop_assert_eq!(parse(&text), Some(m), "{}", text);
        }

        /// Any text: no panic, and nothing outside the range.
        #[test]
        fn any_text_parses_in_range_or_not_at_all(s in any::<String>()) {
            prop_assert!(parse(&s).is_none_or(|m| (MIN_MICROS..=MAX_MICROS).contains(&m)));
            prop_assert!(parse_datetime(&s).is_none_or(|m| (MIN_MICROS..=MAX_MICROS).contains(&m)));
        }

        /// Number-like and date-like text, which reaches deeper than random text.
        #[test]
        fn near_misses_parse_in_range_or_not_at_all(
            s in prop_oneof![
                "[ +-]{0,2}[0-9]{0,24}(\\.[0-9]{0,12})?([eE][+-]?[0-9]{1,4})?",
                "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})?.?",
                any::<f64>().prop_map(|f| format!("{f}")),
                any::<f64>().prop_map(|f| format!("{f:e}")),
            ]
        ) {
            prop_assert!(parse(&s).is_none_or(|m| (MIN_MICROS..=MAX_MICROS).contains(&m)), "{}", s);
            let dt = parse_datetime(&s);
            prop_assert!(dt.is_none() || dt == parse(&s), "{}", s);
        }
    }
}
