//! Time and randomness, injected so that the core stays deterministic.
//!
//! The component passes the WASI clock and random source; tests pass a
//! virtual clock and a seeded generator, so every response is reproducible.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// The core's only window on the outside world besides the [`Store`](crate::Store).
pub trait Env {
    /// Milliseconds since the Unix epoch, UTC.
    fn now_millis(&self) -> i64;
    /// Fills `buf` with cryptographically secure random bytes (ids and token
    /// secrets are drawn from it).
    fn fill_random(&self, buf: &mut [u8]);
    /// Waits `millis` before a write is tried again after losing a race, so
    /// that contending writers spread out instead of spinning. A host that
    /// cannot wait keeps the default, which returns at once (retries stay
    /// bounded in number either way).
    fn pause(&self, millis: u32) {
        let _ = millis;
    }
}

impl<E: Env + ?Sized> Env for &E {
    fn now_millis(&self) -> i64 {
        (**self).now_millis()
    }
    fn fill_random(&self, buf: &mut [u8]) {
        (**self).fill_random(buf)
    }
    fn pause(&self, millis: u32) {
        (**self).pause(millis)
    }
}

/// A deterministic environment for tests: a clock that advances by one
/// second on every reading and a counter-based byte stream. Shareable
/// between threads for concurrency tests. Pauses are counted, not slept.
#[derive(Debug)]
pub struct TestEnv {
    clock: AtomicI64,
    counter: AtomicU64,
    paused: AtomicU64,
}

impl TestEnv {
    /// Starts the virtual clock at `start_millis`.
    pub fn new(start_millis: i64) -> Self {
        TestEnv { clock: AtomicI64::new(start_millis), counter: AtomicU64::new(0), paused: AtomicU64::new(0) }
    }

    /// Milliseconds of backoff asked for so far (see [`Env::pause`]).
    pub fn paused_millis(&self) -> u64 {
        self.paused.load(Ordering::SeqCst)
    }

    /// Moves the virtual clock forward.
    pub fn advance(&self, millis: i64) {
        self.clock.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        // 2026-01-01T00:00:00Z
        TestEnv::new(1_767_225_600_000)
    }
}

impl Env for TestEnv {
    fn now_millis(&self) -> i64 {
        self.clock.fetch_add(1000, Ordering::SeqCst)
    }

    fn pause(&self, millis: u32) {
        self.paused.fetch_add(u64::from(millis), Ordering::SeqCst);
        std::thread::yield_now();
    }

    fn fill_random(&self, buf: &mut [u8]) {
        // splitmix64: distinct, well-spread bytes; not secret, only for tests.
        for chunk in buf.chunks_mut(8) {
            let mut z =
                self.counter.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::SeqCst).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// Formats milliseconds since the epoch as RFC 3339 UTC with milliseconds,
/// e.g. `2026-11-22T07:36:27.123Z` (SCIM `dateTime`, RFC 7643 §2.3.5).
pub fn format_rfc3339(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", tod / 3600, (tod % 3600) / 60, tod % 60)
}

/// Parses an RFC 3339 date-time (any offset, optional fraction) into
/// milliseconds since the epoch; `None` if it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    // Every character of a date-time is ASCII; past this check every byte
    // offset below is a character boundary, so no slice can panic.
    if !s.is_ascii()
        || b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut scaled = frac[..digits.min(3)].to_owned();
        while scaled.len() < 3 {
            scaled.push('0');
        }
        ms = scaled.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
            let oh = num_str(&rest[1..3])?;
            let om = num_str(&rest[4..6])?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se.min(59)) - offset_minutes * 60) * 1000 + ms)
}

fn num_str(s: &str) -> Option<i64> {
    if s.bytes().all(|c| c.is_ascii_digit()) { s.parse().ok() } else { None }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's civil calendar algorithms (public domain).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
        assert_eq!(format_rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        for ms in [0, 1_767_225_600_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms));
        }
        assert_eq!(parse_rfc3339("2026-01-01T01:00:00+01:00"), Some(1_767_225_600_000));
        assert_eq!(parse_rfc3339("2026-02-30T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-01-01 00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00"), None);
    }
}
