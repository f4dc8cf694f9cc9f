//! The runner's error: one plain sentence a person can act on.

use std::fmt;

/// A failure the runner reports as one sentence (no backtrace, no debug formatting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
        }
    }

    /// The sentence.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The runner's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<unikernel_vmm::Error> for Error {
    fn from(err: unikernel_vmm::Error) -> Self {
        Error::new(err.to_string())
    }
}

impl From<unikernel_vmm::elf::ValidateError> for Error {
    fn from(err: unikernel_vmm::elf::ValidateError) -> Self {
        Error::new(err.to_string())
    }
}
