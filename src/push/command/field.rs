//! Typed reads of the loosely typed fields of a backend command, each refusal being the
//! precise [`CommandError`] the backend is told.

use super::super::json::Loose;
use super::error::CommandError;
use std::borrow::Cow;

/// `limit` of `online_list` and `scheduled` when none is given.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit` honoured; larger ones are lowered to it, so one reply stays bounded.
pub const MAX_LIMIT: usize = 1000;

/// `uids`: a non-empty array of non-empty strings.
pub(super) fn uid_list(v: Loose<'_>) -> Result<Vec<Cow<'_, str>>, CommandError> {
    const EXPECTED: &str = "a non-empty array of strings";
    let Loose::Array(items) = v else {
        return Err(wrong("uids", EXPECTED));
    };
    if items.is_empty() {
        return Err(CommandError::EmptyField("uids"));
    }
    items
        .into_iter()
        .map(|item| match item {
            Loose::Str(s) if s.is_empty() => Err(CommandError::EmptyField("uids")),
            Loose::Str(s) => Ok(s),
            _ => Err(wrong("uids", EXPECTED)),
        })
        .collect()
}

/// A required, non-empty string: a uid or a group name.
pub(super) fn name<'a>(v: Loose<'a>, field: &'static str) -> Result<Cow<'a, str>, CommandError> {
    let s = required(v, field, as_str)?;
    if s.is_empty() {
        return Err(CommandError::EmptyField(field));
    }
    Ok(s)
}

/// An optional page size: [`DEFAULT_LIMIT`] if absent, lowered to [`MAX_LIMIT`].
pub(super) fn limit(v: Loose<'_>) -> Result<usize, CommandError> {
    Ok(optional(v, "limit", as_usize)?.map_or(DEFAULT_LIMIT, |n| n.min(MAX_LIMIT)))
}

/// A field that must be present, converted by `conv`.
pub(super) fn required<'a, T>(
    v: Loose<'a>,
    field: &'static str,
    conv: fn(Loose<'a>) -> Result<T, &'static str>,
) -> Result<T, CommandError> {
    optional(v, field, conv)?.ok_or(CommandError::MissingField(field))
}

/// A field that may be absent or `null`, converted by `conv` if present.
pub(super) fn optional<'a, T>(
    v: Loose<'a>,
    field: &'static str,
    conv: fn(Loose<'a>) -> Result<T, &'static str>,
) -> Result<Option<T>, CommandError> {
    if v.is_none() {
        return Ok(None);
    }
    conv(v).map(Some).map_err(|expected| wrong(field, expected))
}

/// A string.
pub(super) fn as_str(v: Loose<'_>) -> Result<Cow<'_, str>, &'static str> {
    match v {
        Loose::Str(s) => Ok(s),
        _ => Err("a string"),
    }
}

/// `true` or `false`.
pub(super) fn as_bool(v: Loose<'_>) -> Result<bool, &'static str> {
    match v {
        Loose::Bool(b) => Ok(b),
        _ => Err("a boolean"),
    }
}

/// A non-negative integer (no fraction, no exponent).
pub(super) fn as_u64(v: Loose<'_>) -> Result<u64, &'static str> {
    match v {
        Loose::UInt(n) => Ok(n),
        _ => Err("a non-negative integer"),
    }
}

/// Like [`as_u64`], saturating on 32-bit targets: only used for offsets and limits.
pub(super) fn as_usize(v: Loose<'_>) -> Result<usize, &'static str> {
    as_u64(v).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

/// Any number.
pub(super) fn as_f64(v: Loose<'_>) -> Result<f64, &'static str> {
    v.as_f64().ok_or("a number")
}

/// The error for `field` not being `expected`.
pub(super) fn wrong(field: &'static str, expected: &'static str) -> CommandError {
    CommandError::WrongType { field, expected }
}
