//! HTTP basic authentication against the web configuration's `basic_auth_users` (bcrypt
//! hashes), as the exporter toolkit does it, with the costs kept in check:
//!
//! - a bcrypt check costs tens of milliseconds, so a verified (user, hash, password) triple is
//!   remembered by its SHA-256 digest (never the password itself); later requests with the
//!   same credentials cost one hash. Only successes are remembered: every wrong password costs
//!   a full bcrypt check, and at most [`MAX_CONCURRENT_BCRYPT`] checks run at once, on the
//!   blocking pool, so guessing is slow and cannot starve the request threads.
//! - user names are compared in constant time, and an unknown user is checked against a dummy
//!   hash, so timing tells nothing about which users exist.
//! - failed attempts are counted (`meridian_http_basic_auth_failures_total`).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::HeaderValue;
use base64::Engine;
use config::Secret;
use subtle::ConstantTimeEq;

/// Bcrypt checks that may run at once (each occupies a blocking thread for ~60 ms).
pub const MAX_CONCURRENT_BCRYPT: usize = 4;

/// Verified credentials remembered at most; the set is emptied when full.
const CACHE_CAPACITY: usize = 4096;

/// Checks credentials and keeps the counters of `/metrics`.
pub struct BasicAuthenticator {
    verified: Mutex<HashSet<[u8; 32]>>,
    bcrypt_slots: Arc<tokio::sync::Semaphore>,
    failures: AtomicU64,
    cache_hits: AtomicU64,
    bcrypt_checks: AtomicU64,
}

impl Default for BasicAuthenticator {
    fn default() -> Self {
        BasicAuthenticator {
            verified: Mutex::new(HashSet::new()),
            bcrypt_slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_BCRYPT)),
            failures: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            bcrypt_checks: AtomicU64::new(0),
        }
    }
}

/// The bcrypt cost of the configured hashes (of the first one; 10 when unreadable).
fn configured_cost(users: &BTreeMap<String, Secret>) -> u32 {
    users
        .values()
        .next()
        .and_then(|h| h.expose().get(4..6))
        .and_then(|c| c.parse::<u32>().ok())
        .filter(|c| (4..=31).contains(c))
        .unwrap_or(10)
}

/// A hash no password matches in practice, for unknown users, with the cost of the configured
/// hashes (so that checking an unknown user takes as long as checking a known one).
fn dummy_hash(cost: u32) -> String {
    static DUMMIES: OnceLock<Mutex<BTreeMap<u32, String>>> = OnceLock::new();
    let mut dummies = DUMMIES
        .get_or_init(|| Mutex::new(BTreeMap::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    dummies
        .entry(cost)
        .or_insert_with(|| {
            bcrypt::hash("meridian: no such user", cost).unwrap_or_else(|_| {
                "$2y$10$invalidinvalidinvalidinvalidinvalidinvalidinvalidinval".into()
            })
        })
        .clone()
}

/// User name and password of a `Basic` `Authorization` header.
fn parse_basic(header: &HeaderValue) -> Option<(String, String)> {
    let text = header.to_str().ok()?;
    let (scheme, rest) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn digest(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [user, hash, password] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl BasicAuthenticator {
    /// Whether the request's `Authorization` header names a user of `users` with the right
    /// password. An empty `users` lets everything through.
    pub async fn check(
        &self,
        users: &BTreeMap<String, Secret>,
        header: Option<&HeaderValue>,
    ) -> bool {
        if users.is_empty() {
            return true;
        }
        let ok = match header.and_then(parse_basic) {
            Some((user, password)) => self.verify(users, &user, &password).await,
            None => false,
        };
        if !ok {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    async fn verify(&self, users: &BTreeMap<String, Secret>, user: &str, password: &str) -> bool {
        // Every configured name is compared, in constant time for equal lengths.
        let mut found: Option<&str> = None;
        for (name, hash) in users {
            if bool::from(name.as_bytes().ct_eq(user.as_bytes())) {
                found = Some(hash.expose());
            }
        }
        let known = found.is_some();
        let key = digest(user, found.unwrap_or(""), password);
        if known && self.lock().contains(&key) {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let Ok(_permit) = self.bcrypt_slots.clone().acquire_owned().await else {
            return false;
        };
        self.bcrypt_checks.fetch_add(1, Ordering::Relaxed);
        let password = password.to_owned();
        let hash = found.map(str::to_owned);
        let cost = configured_cost(users);
        // The (first) dummy hash is made on the blocking pool too: it costs a bcrypt run.
        let matched = tokio::task::spawn_blocking(move || {
            let hash = hash.unwrap_or_else(|| dummy_hash(cost));
            bcrypt::verify(password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if matched && known {
            let mut verified = self.lock();
            if verified.len() >= CACHE_CAPACITY {
                verified.clear();
            }
            verified.insert(key);
            return true;
        }
        false
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Requests refused for missing or wrong credentials.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Requests let through from the cache, without a bcrypt check.
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Ordering::Relaxed)
    }

    /// Bcrypt checks run.
    pub fn bcrypt_checks(&self) -> u64 {
        self.bcrypt_checks.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header(user: &str, password: &str) -> HeaderValue {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {token}")).unwrap()
    }

    #[tokio::test]
    async fn bcrypt_users_and_the_cache() {
        // Cost 4 keeps the test quick; the cache effect is measured at the default cost below.
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let users = BTreeMap::from([("alice".to_owned(), Secret::new(hash))]);
        let auth = BasicAuthenticator::default();
        assert!(auth.check(&BTreeMap::new(), None).await, "no users: open");
        assert!(!auth.check(&users, None).await);
        assert!(!auth.check(&users, Some(&header("alice", "wrong"))).await);
        assert!(!auth.check(&users, Some(&header("bob", "s3cret"))).await);
        assert!(
            !auth
                .check(&users, Some(&HeaderValue::from_static("Bearer x")))
                .await
        );
        assert_eq!(auth.failures(), 4);
        assert!(auth.check(&users, Some(&header("alice", "s3cret"))).await);
        assert!(auth.check(&users, Some(&header("alice", "s3cret"))).await);
        assert_eq!(auth.cache_hits(), 1);
        // A wrong password is never served from the cache.
        assert!(!auth.check(&users, Some(&header("alice", "s3cre"))).await);
        assert_eq!(auth.failures(), 5);
    }

    /// The cost of a check at cost 10 (`htpasswd -nBC 10`), uncached and cached (printed;
    /// run with `--nocapture` to see the numbers).
    #[tokio::test]
    async fn cache_saves_the_bcrypt_cost() {
        let hash = bcrypt::hash("pw", 10).unwrap();
        let users = BTreeMap::from([("u".to_owned(), Secret::new(hash))]);
        let auth = BasicAuthenticator::default();
        let h = header("u", "pw");
        let start = std::time::Instant::now();
        assert!(auth.check(&users, Some(&h)).await);
        let first = start.elapsed();
        let start = std::time::Instant::now();
        for _ in 0..100 {
            assert!(auth.check(&users, Some(&h)).await);
        }
        let cached = start.elapsed() / 100;
        println!("bcrypt cost 10: first check {first:?}, cached check {cached:?}");
        assert!(cached * 10 < first, "first {first:?}, cached {cached:?}");
    }
}
