//! What the notification channels refuse. Converted to the HTTP answer in
//! one place (`crate::error`, block "notify"), which also maps the unique
//! channel name to 409.

/// A notification channels domain error.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A database error; a duplicate channel name becomes a 409.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}
