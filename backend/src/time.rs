//! Timestamps: microseconds since the Unix epoch in storage, RFC 3339 on the bridge.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_micros() -> i64 {
    to_micros(SystemTime::now())
}

pub fn to_micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// `2026-11-23T08:00:00.123456Z`.
pub fn rfc3339(micros: i64) -> String {
    let t = if micros >= 0 {
        UNIX_EPOCH + Duration::from_micros(micros.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    };
    humantime::format_rfc3339_micros(t).to_string()
}

/// Parses RFC 3339 (`2026-11-23T08:00:00Z`, fractional seconds allowed) or Unix seconds
/// (`1795000000`, `1795000000.5`).
pub fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return secs
            .is_finite()
            .then(|| (secs * 1_000_000.0).round() as i64);
    }
    humantime::parse_rfc3339_weak(s).ok().map(to_micros)
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
}
