//! Unix seconds as RFC 3339 text, for every `i64`: a civil-calendar conversion (Howard
//! Hinnant's `civil_from_days`) with no panicking path, where formatting libraries refuse years
//! past 9999 or before 1970.

/// `2027-01-15T08:00:00Z`; years outside 0000–9999 are written with a sign (`+10000-…`).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let year = if (0..=9999).contains(&y) { format!("{y:04}") } else { format!("{y:+}") };
    format!("{year}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// `2027-01-15 08:00 UTC`, for people.
pub fn utc_minutes(unix: i64) -> String {
    let text = rfc3339(unix);
    match text.split_once('T') {
        Some((date, time)) => format!("{date} {} UTC", time.get(..5).unwrap_or(time)),
        None => text,
    }
}

/// Year, month, day of the proleptic Gregorian calendar for days since 1970-01-01.
fn civil_from_days(days: i64) -> (i128, u32, u32) {
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i128::from(m <= 2);
    (y, u32::try_from(m).unwrap_or(1), u32::try_from(d).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_800), "+10000-01-01T00:00:00Z");
        assert_eq!(utc_minutes(1_800_000_000), "2027-01-15 08:00 UTC");
    }

    #[test]
    fn every_i64_formats_without_panicking() {
        for t in [i64::MIN, i64::MIN + 1, -86_401, i64::MAX - 1, i64::MAX] {
            assert!(rfc3339(t).ends_with('Z'), "{t}");
        }
    }
}
