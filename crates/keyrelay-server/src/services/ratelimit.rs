//! Per-IP limits on the public routes, which anyone can call without a key.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::{ServiceError, ServiceResult};

/// A token bucket per client IP (governor's keyed limiter).
pub struct PublicRateLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl PublicRateLimiter {
    pub fn new(per_minute: u32) -> Self {
        let rate = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        PublicRateLimiter {
            limiter: RateLimiter::keyed(Quota::per_minute(rate)),
        }
    }

    pub fn check(&self, ip: IpAddr) -> ServiceResult<()> {
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&ip)
            .map_err(|_| ServiceError::RateLimited {
                message: "too many requests from this address; wait a minute and try again".into(),
            })
    }
}
