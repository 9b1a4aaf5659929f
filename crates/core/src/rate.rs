//! Request-rate limits for anonymous writes (a device authorization, a waiting authorization
//! request): at most `per_minute` requests per key and calendar minute. Unlike the back-off of
//! [`crate::throttle`], nothing here is a failure; it only bounds how many rows one address or
//! one client can make the server store.
//!
//! The table is bounded: when full, windows of past minutes are dropped; if it is still full,
//! a key not yet in it is let through untracked (the per-client limit, one key per client,
//! still holds), rather than refusing everyone.

use std::collections::HashMap;

#[derive(Debug)]
pub struct RateLimit {
    per_minute: u32,
    capacity: usize,
    /// key -> (minute, requests counted in it)
    windows: HashMap<String, (i64, u32)>,
}

impl RateLimit {
    /// `per_minute` 0: no limit.
    pub fn new(per_minute: u32, capacity: usize) -> Self {
        Self { per_minute, capacity: capacity.max(1), windows: HashMap::new() }
    }

    /// Counts one request under `key` at `now`: `Err(seconds)` until the next minute when the
    /// key has used its minute.
    pub fn hit(&mut self, key: &str, now: i64) -> Result<(), i64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let minute = now.div_euclid(60);
        if !self.windows.contains_key(key) && self.windows.len() >= self.capacity {
            self.windows.retain(|_, (m, _)| *m == minute);
            if self.windows.len() >= self.capacity {
                return Ok(());
            }
        }
        let window = self.windows.entry(key.to_owned()).or_insert((minute, 0));
        if window.0 != minute {
            *window = (minute, 0);
        }
        if window.1 >= self.per_minute {
            return Err(60 - now.rem_euclid(60));
        }
        window.1 += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_of_requests_per_key() {
        let mut r = RateLimit::new(3, 10);
        let answers: Vec<_> = (0..4).map(|_| r.hit("a", 120)).collect();
        assert_eq!(answers, [Ok(()), Ok(()), Ok(()), Err(60)]);
        assert_eq!(r.hit("a", 150), Err(30));
        assert_eq!(r.hit("b", 150), Ok(()), "keys are independent");
        assert_eq!(r.hit("a", 180), Ok(()), "a new minute");
        assert!(RateLimit::new(0, 1).hit("a", 0).is_ok(), "0: no limit");
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut r = RateLimit::new(1, 3);
        for i in 0..10 {
            assert_eq!(r.hit(&format!("k{i}"), 0), Ok(()));
        }
        assert!(r.len() <= 3);
        assert_eq!(r.hit("k0", 0), Err(60), "tracked keys keep their count");
        assert_eq!(r.hit("k9", 60), Ok(()), "past minutes make room");
    }
}
