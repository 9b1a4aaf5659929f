//! When each pending device code last polled, in memory, so that polling costs no database
//! write (RFC 8628 §3.5 `slow_down`). A device polling faster than its interval gets
//! `slow_down` and its interval grows by 5 seconds for good.
//!
//! Several nodes on one database each keep their own table: a device whose polls are spread
//! over nodes by a load balancer is checked per node, so it may poll up to once per interval
//! per node before `slow_down`. The interval is advice to well-behaved clients; the bound on
//! abuse is the request rate each node can serve, not this table.

use postern_core::secret::TokenHash;
use std::collections::HashMap;
use std::sync::Mutex;

const MAX_ENTRIES: usize = 200_000;

#[derive(Debug, Default)]
pub struct DevicePolls {
    /// device-code hash -> (last poll, current interval)
    polls: Mutex<HashMap<[u8; 32], (i64, i64)>>,
}

impl DevicePolls {
    /// Records a poll at `now`. `Err(new_interval)` when it came too soon.
    pub fn poll(&self, code: &TokenHash, now: i64, base_interval: i64) -> Result<(), i64> {
        let mut polls = self.polls.lock().unwrap_or_else(|p| p.into_inner());
        if polls.len() >= MAX_ENTRIES {
            // Codes live minutes: forget polls older than an hour.
            polls.retain(|_, (last, _)| now - *last < 3600);
        }
        let entry = polls.entry(code.0).or_insert((i64::MIN / 2, base_interval));
        let (last, interval) = *entry;
        if now - last < interval {
            *entry = (now, interval + 5);
            return Err(interval + 5);
        }
        *entry = (now, interval);
        Ok(())
    }

    /// Forgets a code (consumed, denied or expired).
    pub fn forget(&self, code: &TokenHash) {
        self.polls.lock().unwrap_or_else(|p| p.into_inner()).remove(&code.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_too_fast_grows_the_interval_for_good() {
        let polls = DevicePolls::default();
        let code = TokenHash::of("device-code");
        assert_eq!(polls.poll(&code, 100, 5), Ok(()));
        assert_eq!(polls.poll(&code, 105, 5), Ok(()), "exactly on time");
        assert_eq!(polls.poll(&code, 108, 5), Err(10), "too soon: +5 s");
        assert_eq!(polls.poll(&code, 115, 5), Err(15), "10 s are now needed");
        assert_eq!(polls.poll(&code, 130, 5), Ok(()), "15 s later is fine");
        polls.forget(&code);
        assert_eq!(polls.poll(&code, 131, 5), Ok(()));
    }
}
