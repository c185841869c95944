//! Random identifiers in the shapes the real providers use (request ids, file ids, response ids).

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` random ASCII letters and digits.
pub fn alnum(n: usize) -> String {
    (0..n)
        .map(|_| ALNUM[rand::random_range(0..ALNUM.len())] as char)
        .collect()
}

/// `n` random lowercase hex digits.
pub fn hex(n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(rand::random_range(0..16u32), 16).unwrap_or('0'))
        .collect()
}

/// Seconds since the Unix epoch, as the providers' `created` fields carry.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// RFC 3339 UTC time with nanoseconds, as Gemini's file timestamps carry.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}
