//! Password and lockout rules (JAHIS 09-001 §6.2(2), §7.1.1).

use serde::{Deserialize, Serialize};

use crate::{DomainError, Millis};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordPolicy {
    pub min_length: usize,
    /// How many previous passwords may not be reused.
    pub history: usize,
    /// Force a change after this many days (None = no expiry).
    pub max_age_days: Option<u32>,
    /// Letters, digits and symbols mixed (the 令和7年度 checklist: 英数字・記号を混ぜた8文字以上).
    pub require_mix: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            history: 3,
            max_age_days: None,
            require_mix: true,
        }
    }
}

/// Whether `pw` mixes letters, digits and symbols (a space counts as a symbol, so that a
/// passphrase with a number in it qualifies).
pub fn is_mixed(pw: &str) -> bool {
    pw.chars().any(char::is_alphabetic)
        && pw.chars().any(|c| c.is_numeric())
        && pw.chars().any(|c| !c.is_alphanumeric() && !c.is_control())
}

/// Upper bound so that a huge "password" cannot be used to burn CPU in the hash.
pub const MAX_PASSWORD_CHARS: usize = 256;

const TOO_COMMON: [&str; 12] = [
    "password",
    "password1",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyui",
    "qwerty123",
    "abcd1234",
    "11111111",
    "iloveyou",
    "passw0rd",
    "admin123",
];

pub fn check_strength(policy: &PasswordPolicy, login: &str, pw: &str) -> Result<(), DomainError> {
    let n = pw.chars().count();
    if n < policy.min_length.max(1) {
        return Err(DomainError::Invalid(format!(
            "パスワードは{}文字以上にしてください",
            policy.min_length
        )));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(DomainError::Invalid(format!(
            "パスワードは{MAX_PASSWORD_CHARS}文字以内にしてください"
        )));
    }
    if policy.require_mix && !is_mixed(pw) {
        return Err(DomainError::Invalid(
            "パスワードには英字・数字・記号（空白も可）をそれぞれ含めてください".into(),
        ));
    }
    let lower = pw.to_lowercase();
    if login.chars().count() >= 3 && lower.contains(&login.to_lowercase()) {
        return Err(DomainError::Invalid(
            "パスワードにログインIDを含めないでください".into(),
        ));
    }
    let first = pw.chars().next();
    if pw.chars().all(|c| Some(c) == first) || TOO_COMMON.contains(&lower.as_str()) {
        return Err(DomainError::Invalid(
            "推測されやすいパスワードは使えません".into(),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    /// Minutes a locked account stays locked; 0 = until an administrator unlocks it.
    pub lock_minutes: u32,
    /// Delay added to each failed attempt: the same for every failure, known account or not,
    /// so that neither its presence nor its growth tells a real login name from an invented one.
    pub failure_delay_ms: u64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            lock_minutes: 30,
            failure_delay_ms: 1000,
        }
    }
}

/// Sentinel for "locked until an administrator unlocks".
pub const LOCKED_INDEFINITELY: Millis = i64::MAX;

impl LockoutPolicy {
    /// After one more failure: the new failure count and, if now locked, until when.
    pub fn after_failure(&self, failures_before: u32, now: Millis) -> (u32, Option<Millis>) {
        let failures = failures_before.saturating_add(1);
        if self.max_failures > 0 && failures >= self.max_failures {
            let until = if self.lock_minutes == 0 {
                LOCKED_INDEFINITELY
            } else {
                now + i64::from(self.lock_minutes) * 60_000
            };
            (failures, Some(until))
        } else {
            (failures, None)
        }
    }

    /// The delay before answering a failed attempt (the same for every failure).
    pub fn delay_ms(&self) -> u64 {
        self.failure_delay_ms
    }
}

pub fn is_locked(locked_until: Option<Millis>, now: Millis) -> bool {
    matches!(locked_until, Some(t) if t > now)
}

pub fn password_expired(policy: &PasswordPolicy, changed_at: Millis, now: Millis) -> bool {
    match policy.max_age_days {
        Some(d) if d > 0 => now - changed_at > i64::from(d) * 86_400_000,
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionPolicy {
    /// Minutes without activity after which a session ends.
    pub idle_minutes: u32,
    /// Hours after which a session ends regardless of activity.
    pub absolute_hours: u32,
    /// Minutes without activity after which a browser session locks: the screen asks for the
    /// password again (not a new sign-in) and what was being typed survives. 0, or not less
    /// than `idle_minutes`, turns locking off.
    pub lock_minutes: u32,
}

impl SessionPolicy {
    /// Idle milliseconds before a browser session locks, when locking is on (it is off at 0
    /// and when it would not come before the session ends).
    pub fn lock_ms(&self) -> Option<i64> {
        (self.lock_minutes > 0 && self.lock_minutes < self.idle_minutes)
            .then(|| i64::from(self.lock_minutes) * 60_000)
    }
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle_minutes: 15,
            absolute_hours: 12,
            lock_minutes: 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strength_rules() {
        let p = PasswordPolicy::default();
        assert!(check_strength(&p, "sato", "short").is_err());
        assert!(check_strength(&p, "sato", "aaaaaaaaaa").is_err());
        assert!(check_strength(&p, "sato", "password1").is_err());
        assert!(check_strength(&p, "sato", "xxSATOxx99").is_err());
        assert!(check_strength(&p, "sato", &"a1".repeat(200)).is_err());
        assert!(check_strength(&p, "sato", "桜が咲く春の日に、9時").is_ok());
        assert!(check_strength(&p, "sato", "correct horse 7").is_ok());
        assert!(check_strength(&p, "sato", "Tr0ub4dor&3").is_ok());
        // The 令和7年度 rule: letters, digits and symbols mixed.
        for weak in [
            "correct horse",
            "桜が咲く春の日に",
            "abcdefgh12",
            "abcd-efgh",
            "1234-5678",
        ] {
            assert!(check_strength(&p, "sato", weak).is_err(), "{weak}");
        }
        let lax = PasswordPolicy {
            require_mix: false,
            ..PasswordPolicy::default()
        };
        assert!(check_strength(&lax, "sato", "correct horse").is_ok());
    }

    #[test]
    fn lockout_after_n_failures() {
        let p = LockoutPolicy::default();
        let mut f = 0;
        for i in 1..5 {
            let (n, lock) = p.after_failure(f, 1000);
            assert_eq!((n, lock), (i, None));
            f = n;
        }
        let (n, lock) = p.after_failure(f, 1000);
        assert_eq!(n, 5);
        assert_eq!(lock, Some(1000 + 30 * 60_000));
        assert!(is_locked(lock, 1000));
        assert!(!is_locked(lock, 1000 + 30 * 60_000));
        let admin_only = LockoutPolicy {
            lock_minutes: 0,
            ..p
        };
        assert_eq!(admin_only.after_failure(4, 0).1, Some(LOCKED_INDEFINITELY));
        assert_eq!(p.delay_ms(), 1000);
    }

    #[test]
    fn expiry() {
        let p = PasswordPolicy {
            max_age_days: Some(90),
            ..Default::default()
        };
        assert!(!password_expired(&p, 0, 89 * 86_400_000));
        assert!(password_expired(&p, 0, 91 * 86_400_000));
        assert!(!password_expired(
            &PasswordPolicy::default(),
            0,
            i64::MAX / 2
        ));
    }
}
