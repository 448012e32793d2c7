//! What to do when a real part (a binary, a package) is missing.

/// A test part is missing and the test is skipped (never under `CI=true`).
#[derive(Debug)]
pub struct Skipped;

/// `Ok(())` when `available`; otherwise, under `CI=true`, panics with a
/// message naming the part and how to install it; elsewhere prints that the
/// test is skipped and returns `Err(Skipped)`.
pub fn part(available: bool, what: &str, install_hint: &str) -> Result<(), Skipped> {
    if available {
        return Ok(());
    }
    let msg = format!("{what} is missing ({install_hint})");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("CI=true forbids skipping: {msg}");
    }
    eprintln!("SKIPPED: {msg}");
    Err(Skipped)
}

/// Whether an executable exists at `path` or on PATH.
pub fn have(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}
