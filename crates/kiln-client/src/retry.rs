//! When to try a call again: after no answer, or an answer that says
//! "later" (`429`, `503`, a gateway's `502` or `504`), waiting what
//! `Retry-After` asks or backing off. Every call Kiln's client makes may be
//! repeated: reads and deletes are idempotent, and a submission carries an
//! `Idempotency-Key`.

use std::time::Duration;

/// How a client retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries of one call in all (the first included).
    pub attempts: u32,
    /// The wait after the first failed try without a `Retry-After`;
    /// doubled after each, up to `max_wait`.
    pub first_wait: Duration,
    /// The longest wait between tries, `Retry-After` included.
    pub max_wait: Duration,
}

impl Default for Retry {
    /// Ten tries over about two minutes: a server restarting, or a queue
    /// draining, is waited out; a server that is gone is reported. The
    /// longest wait is a full queue's longest `Retry-After` (Kiln asks
    /// for 60 s at most).
    fn default() -> Retry {
        Retry {
            attempts: 10,
            first_wait: Duration::from_millis(250),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl Retry {
    /// No retries: every failure is reported at once.
    pub fn never() -> Retry {
        Retry {
            attempts: 1,
            ..Retry::default()
        }
    }

    /// The wait after the `failed`-th failed try (1 for the first), or
    /// `None` when no try is left. `retry_after` is what the server asked.
    pub fn wait_after(&self, failed: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if failed >= self.attempts {
            return None;
        }
        let backoff = self
            .first_wait
            .saturating_mul(1 << failed.saturating_sub(1).min(16));
        Some(retry_after.unwrap_or(backoff).min(self.max_wait))
    }
}

/// `Retry-After` (RFC 9110, 10.2.3): delay-seconds, as Kiln sends it, or
/// an HTTP date, as a proxy in front of it may (the time until then; none
/// once it has passed).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Whether a status asks to come back later: `429`, `503`, and a
/// gateway's `502` or `504` (a server restarting behind a proxy).
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let retry = Retry {
            attempts: 20,
            first_wait: Duration::from_millis(100),
            max_wait: Duration::from_secs(1),
        };
        let waits: Vec<_> = (1..=6)
            .map(|n| retry.wait_after(n, None).unwrap().as_millis())
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn the_server_s_retry_after_wins_within_the_cap() {
        let retry = Retry::default();
        assert_eq!(
            retry.wait_after(1, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry.wait_after(1, Some(Duration::from_secs(3600))),
            Some(retry.max_wait)
        );
    }

    #[test]
    fn no_wait_once_the_tries_are_spent() {
        let retry = Retry {
            attempts: 3,
            ..Retry::default()
        };
        assert!(retry.wait_after(2, None).is_some());
        assert_eq!(retry.wait_after(3, None), None);
        assert_eq!(Retry::never().wait_after(1, None), None);
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        assert_eq!(parse_retry_after(" 7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        // A date passed: retry now.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let in_a_minute = std::time::SystemTime::now() + Duration::from_secs(60);
        let wait = parse_retry_after(&httpdate::fmt_http_date(in_a_minute)).unwrap();
        assert!(
            (Duration::from_secs(58)..=Duration::from_secs(60)).contains(&wait),
            "{wait:?}"
        );
    }

    #[test]
    fn gateways_failing_count_as_later() {
        for status in [429, 502, 503, 504] {
            assert!(is_retryable(status), "{status}");
        }
        for status in [400, 404, 409, 422, 500] {
            assert!(!is_retryable(status), "{status}");
        }
    }
}
