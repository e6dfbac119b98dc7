//! The `X-Greylist` header added on the pass that ends a delay, in the shape admins know
//! from postgrey: `X-Greylist: delayed 301 seconds by postward-greyd-0.1.0 at mx1.example.org; Sat, 21 Nov 2026 01:45:04 +0000`.

/// The header value.
pub fn x_greylist(delayed: i64, host: &str, now: i64) -> String {
    format!(
        "delayed {delayed} seconds by postward-greyd-{} at {host}; {}",
        env!("CARGO_PKG_VERSION"),
        rfc5322_date(now)
    )
}

/// The local host name, for the header.
pub fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}

/// An RFC 5322 date in UTC for a Unix time.
pub fn rfc5322_date(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(m - 1).unwrap_or(0)];
    format!("{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} +0000", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Gregorian (year, month, day) for days since 1970-01-01 (the well-known civil-from-days
/// conversion over 400-year eras).
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
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc5322_date(1_795_136_704), "Fri, 20 Nov 2026 01:05:04 +0000");
        assert_eq!(rfc5322_date(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 +0000");
    }

    #[test]
    fn header_value() {
        let v = x_greylist(301, "mx1.example.org", 0);
        assert!(v.starts_with("delayed 301 seconds by postward-greyd-"), "{v}");
        assert!(v.ends_with(" at mx1.example.org; Thu, 01 Jan 1970 00:00:00 +0000"), "{v}");
    }
}
