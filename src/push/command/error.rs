//! Why a backend request was refused: one variant per rule, its `Display` what the backend
//! is told.

use super::super::json::ScanError;
use std::fmt;

/// Why a backend request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The input is not one JSON value (or has bytes after it).
    NotJson,
    /// The input is JSON but not an object.
    NotObject,
    /// A required field is absent (or `null`).
    MissingField(&'static str),
    /// A field has the wrong JSON type or range.
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be, e.g. "string".
        expected: &'static str,
    },
    /// A uid or group name is the empty string.
    EmptyField(&'static str),
    /// `cmd` names no command (cut to 64 bytes).
    UnknownCommand(String),
    /// `push` must name exactly one of `uid`, `uids`, `group`, `all: true`.
    TargetCount,
    /// `delay`/`at` are negative, more than [`MAX_AHEAD_MS`](super::MAX_AHEAD_MS) ahead, or both given.
    BadWhen(&'static str),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson => f.write_str("not valid JSON"),
            Self::NotObject => f.write_str("not a JSON object"),
            Self::MissingField(field) => write!(f, "missing field: {field}"),
            Self::WrongType { field, expected } => write!(f, "field {field} must be {expected}"),
            Self::EmptyField(field) => write!(f, "field {field} must not be empty"),
            Self::UnknownCommand(cmd) => write!(f, "unknown cmd: {cmd}"),
            Self::TargetCount => {
                f.write_str("push needs exactly one target: uid, uids, group or all:true")
            }
            Self::BadWhen(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for CommandError {}

impl From<ScanError> for CommandError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::NotJson => Self::NotJson,
            ScanError::NotObject => Self::NotObject,
        }
    }
}
