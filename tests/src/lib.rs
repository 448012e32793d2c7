//! Test harness (see tests/e2e).
