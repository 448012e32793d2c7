//! Loading tests.
use super::*;
