//! When a connection is refreshed: the margin before expiry, the time the
//! scheduler picks, and the backoff after a failure.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

use crate::config::RefreshConfig;

fn chrono(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

/// The margin for a token issued at `issued` expiring at `expires_at`: the
/// configured one, but never more than half the token's lifetime (a
/// 60-second token is not refreshed on every use).
pub fn margin(cfg: &RefreshConfig, issued: DateTime<Utc>, expires_at: DateTime<Utc>) -> Duration {
    let configured = chrono(cfg.margin);
    let lifetime = expires_at - issued;
    if lifetime > Duration::zero() {
        configured.min(lifetime / 2)
    } else {
        configured
    }
}

/// Whether a token must be refreshed before use.
pub fn needs_refresh(
    cfg: &RefreshConfig,
    issued: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    expires_at.is_some_and(|at| at - now <= margin(cfg, issued, at))
}

/// When the scheduler should refresh a connection whose credentials were
/// just written: ahead of expiry by the margin plus up to a quarter of it
/// at random (so that connections made together spread out), and at the
/// latest after the idle interval (refresh tokens some providers expire
/// when unused). `None` when there is nothing to refresh with.
pub fn next_refresh_at(
    cfg: &RefreshConfig,
    refreshable: bool,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if !refreshable {
        return None;
    }
    let keep_alive = now + chrono(cfg.idle);
    let by_expiry = expires_at.map(|at| {
        let m = margin(cfg, now, at);
        let spread = m.num_milliseconds() / 4;
        let jitter = if spread > 0 {
            rand::thread_rng().gen_range(0..=spread)
        } else {
            0
        };
        (at - m - Duration::milliseconds(jitter)).max(now)
    });
    Some(by_expiry.map_or(keep_alive, |at| at.min(keep_alive)))
}

/// When to try again after `failures` transient failures in a row:
/// exponential from 1 s (a blip must not outlast a short-lived token),
/// capped at 30 min, with full jitter over the upper
/// half, and never before the provider's `Retry-After`.
pub fn backoff(
    failures: i64,
    retry_after: Option<std::time::Duration>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let exp = u32::try_from(failures.clamp(1, 20) - 1).unwrap_or(0);
    let ceiling_ms = (1_000i64.saturating_mul(1i64 << exp.min(20))).min(30 * 60 * 1000);
    let wait_ms = rand::thread_rng().gen_range(ceiling_ms / 2..=ceiling_ms);
    let mut at = now + Duration::milliseconds(wait_ms);
    if let Some(ra) = retry_after {
        at = at.max(now + chrono(ra));
    }
    at
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cfg() -> RefreshConfig {
        RefreshConfig::default()
    }

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn the_margin_is_at_most_half_the_lifetime() {
        assert_eq!(margin(&cfg(), t(0), t(3600)), Duration::minutes(5));
        assert_eq!(margin(&cfg(), t(0), t(60)), Duration::seconds(30));
        assert!(!needs_refresh(&cfg(), t(0), Some(t(60)), t(29)));
        assert!(needs_refresh(&cfg(), t(0), Some(t(60)), t(30)));
        assert!(!needs_refresh(&cfg(), t(0), None, t(1_000_000)));
    }

    #[test]
    fn schedules_fall_inside_the_margin_and_before_keep_alive() {
        for _ in 0..200 {
            let at = next_refresh_at(&cfg(), true, Some(t(3600)), t(0)).unwrap();
            assert!(at <= t(3600 - 300) && at >= t(3600 - 375), "{at}");
        }
        let idle = next_refresh_at(&cfg(), true, None, t(0)).unwrap();
        assert_eq!(idle, t(7 * 24 * 3600));
        let far = next_refresh_at(&cfg(), true, Some(t(365 * 24 * 3600)), t(0)).unwrap();
        assert_eq!(far, idle, "keep-alive comes first for long-lived tokens");
        assert_eq!(next_refresh_at(&cfg(), false, Some(t(3600)), t(0)), None);
        let overdue = next_refresh_at(&cfg(), true, Some(t(-10)), t(0)).unwrap();
        assert_eq!(overdue, t(0));
    }

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        for failures in 1..30 {
            let at = backoff(failures, None, t(0));
            let ceiling_ms = (1000i64 << (failures - 1).min(20)).min(1_800_000);
            let lo = t(0) + chrono::Duration::milliseconds(ceiling_ms / 2);
            let hi = t(0) + chrono::Duration::milliseconds(ceiling_ms);
            assert!(at >= lo && at <= hi, "{failures}: {at}");
        }
        let at = backoff(1, Some(std::time::Duration::from_secs(120)), t(0));
        assert!(at >= t(120));
    }
}
