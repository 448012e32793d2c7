//! Password hashing (argon2id) and the password policy.
//!
//! Parameters are OWASP's minimum for argon2id: 19 MiB memory, 2 iterations,
//! 1 lane. Hashing runs on the blocking pool so it never stalls the async
//! workers, and at most one hash per CPU core runs at a time ([`slots`]):
//! each needs 19 MiB, and the blocking pool has up to 512 threads, so a
//! flood of logins could otherwise take gigabytes. A hash that finds no slot
//! within [`WAIT`] fails with [`Busy`] (503 with `Retry-After`).
//! glibc's malloc would keep every freed 19 MiB block in its heaps (its
//! mmap threshold rises to the largest freed mapping), so RSS grew by about
//! 3 MiB per login and never fell; `serve` calls [`release_large_blocks`]
//! once, which keeps large blocks in their own mappings, returned on free. The policy: 12 to 128 characters, not the username, and not
//! among the most common / easily guessed passwords (zxcvbn's frequency
//! lists: a score below 2 is refused).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use sqlx::PgConnection;

use super::sessions;

/// A password the policy refuses; the message is shown to the user as is.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

pub const MIN_LEN: usize = 12;
pub const MAX_LEN: usize = 128;

fn argon2() -> Argon2<'static> {
    // 19 MiB, t=2, p=1 (OWASP Password Storage Cheat Sheet minimum).
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the policy; the error message is shown to the user as is.
pub fn check_policy(password: &str, username: &str) -> Result<(), PolicyError> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(PolicyError(format!(
            "the password must have at least {MIN_LEN} characters"
        )));
    }
    if len > MAX_LEN {
        return Err(PolicyError(format!(
            "the password must have at most {MAX_LEN} characters"
        )));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(PolicyError("the password must not be the username".into()));
    }
    let guessable = zxcvbn::zxcvbn(password, &[username, "opsdeck"]);
    if (guessable.score() as u8) < 2 {
        return Err(PolicyError(
            "this password is too common or too easy to guess; choose a longer, less predictable one".into(),
        ));
    }
    Ok(())
}

/// How long a hash waits for a free slot before answering [`Busy`].
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Makes glibc serve allocations of 1 MiB and more (argon2's memory) from
/// their own mappings, given back to the system when freed, instead of
/// letting the threshold drift up and the heaps keep them. Process-wide;
/// called once at start. (No effect elsewhere than glibc.)
pub fn release_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc tunable; called at start-up.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// The `Retry-After` of a [`Busy`] answer.
pub const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Every slot was taken for [`WAIT`]: the server is saturated with hashing.
#[derive(Debug, thiserror::Error)]
#[error("too many password checks at once")]
pub struct Busy;

/// One permit per CPU core (at least 2): hashes running at once.
fn slots() -> std::sync::Arc<tokio::sync::Semaphore> {
    static SLOTS: std::sync::OnceLock<std::sync::Arc<tokio::sync::Semaphore>> =
        std::sync::OnceLock::new();
    SLOTS
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            std::sync::Arc::new(tokio::sync::Semaphore::new(cores.max(2)))
        })
        .clone()
}

/// Runs `work` on the blocking pool once a hashing slot is free.
async fn with_slot<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let permit = tokio::time::timeout(WAIT, slots().acquire_owned())
        .await
        .map_err(|_| Busy)?
        .expect("the semaphore is never closed");
    // The permit moves into the blocking task: a request that gives up
    // early does not free the slot while its hash still runs.
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await?
}

/// Hashes a password (PHC string) on the blocking pool.
pub async fn hash(password: String) -> anyhow::Result<String> {
    with_slot(move || hash_blocking(&password)).await
}

pub fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))?
        .to_string())
}

/// Verifies a password against a stored hash, on the blocking pool. With no
/// stored hash (unknown user) it still spends the same work, so response
/// times do not reveal which usernames exist.
pub async fn verify(password: String, stored: Option<String>) -> anyhow::Result<bool> {
    with_slot(move || {
        let stored = stored.unwrap_or_else(|| {
            DUMMY_HASH
                .get_or_init(|| hash_blocking("dummy password for timing").unwrap_or_default())
                .clone()
        });
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        Ok(argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
}

static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Stores a new hash for user `id` and ends all of the user's sessions;
/// returns how many ended.
pub async fn set(
    conn: &mut PgConnection,
    id: i64,
    hash: &str,
    must_change: bool,
) -> sqlx::Result<u64> {
    sqlx::query!(
        "UPDATE users SET password_hash = $2, must_change_password = $3, password_changed_at = now() WHERE id = $1",
        id,
        hash,
        must_change
    )
    .execute(&mut *conn)
    .await?;
    sessions::end_all(conn, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(check_policy("short", "bob").is_err());
        assert!(check_policy(&"x".repeat(129), "bob").is_err());
        assert!(
            check_policy("password1234", "bob").is_err(),
            "common password refused"
        );
        assert!(
            check_policy("qwertyuiop123", "bob").is_err(),
            "keyboard walk refused"
        );
        assert!(check_policy("alice.wonder1", "alice.wonder1").is_err());
        assert!(check_policy("tangerine-orbit-lamp-42", "bob").is_ok());
    }

    #[test]
    fn hash_uses_owasp_parameters_and_verifies() {
        let h = hash_blocking("tangerine-orbit-lamp-42").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(argon2()
            .verify_password(b"tangerine-orbit-lamp-42", &parsed)
            .is_ok());
        assert!(argon2()
            .verify_password(b"tangerine-orbit-lamp-43", &parsed)
            .is_err());
    }
}
