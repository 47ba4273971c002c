//! Reads the file's plain values (address strings, float seconds, level names) into typed
//! ones. A bad value is a serde error, so toml reports it with its line, column and text.

use serde::{de::Error, Deserialize, Deserializer};
use std::{net::SocketAddr, time::Duration};

/// Seconds past this are refused: they are surely a typo, and `Instant + Duration` must not
/// overflow.
const MAX_SECONDS: f64 = 1e9;

/// An `IP:port` string.
pub(super) fn addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(d)?;
    parse_addr(&text).map_err(D::Error::custom)
}

/// An `IP:port` string, or `""` for off.
pub(super) fn optional_addr<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    parse_optional_addr(&text).map_err(D::Error::custom)
}

/// Parses an `IP:port` address; the error says what was wrong.
pub(crate) fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an IP:port address"))
}

/// Parses an `IP:port` address, `""` meaning off.
pub(crate) fn parse_optional_addr(text: &str) -> Result<Option<SocketAddr>, String> {
    if text.is_empty() {
        Ok(None)
    } else {
        parse_addr(text).map(Some)
    }
}

/// Seconds (integer or float) greater than 0.
pub(super) fn positive_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match seconds(d)? {
        Some(time) => Ok(time),
        None => Err(D::Error::custom("must be a positive number of seconds")),
    }
}

/// Seconds (integer or float), 0 meaning off.
pub(super) fn seconds_or_off<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    seconds(d)
}

/// Seconds in `0..MAX_SECONDS`; 0 is `None`.
fn seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let secs = f64::deserialize(d)?;
    if !(0.0..MAX_SECONDS).contains(&secs) {
        return Err(D::Error::custom(format!(
            "{secs} is not a number of seconds (0 to {MAX_SECONDS})"
        )));
    }
    Ok((secs > 0.0).then(|| Duration::from_secs_f64(secs)))
}

/// `error`, `warn`, `info`, `debug`, `trace` or `off`, in any case.
pub(super) fn log_level<'de, D: Deserializer<'de>>(d: D) -> Result<log::LevelFilter, D::Error> {
    let name = String::deserialize(d)?;
    name.parse()
        .map_err(|_| D::Error::custom("log_level must be error, warn, info, debug or trace"))
}

/// CIDRs (`10.0.0.0/8`, `fd00::/8`) or single addresses (`127.0.0.1`, a `/32` or `/128`).
pub(super) fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| parse_network(text).map_err(D::Error::custom))
        .collect()
}

/// One CIDR or address; the error names the text.
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not an address or CIDR (e.g. \"10.0.0.0/8\")"))
}
