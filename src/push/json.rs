//! A one-pass, borrowing scan of a backend's JSON object that keeps only the keys commands use.
//!
//! Derived `Deserialize` would turn `{"uid":42}` into a serde error for the whole line and
//! refuse duplicate keys; this scan instead records each known key's value with its JSON
//! type ([`Loose`]), so `command` can say precisely which field is wrong, and a repeated key
//! keeps its last value, as PHP's `json_decode` does.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::{borrow::Cow, fmt, marker::PhantomData};

/// One JSON value, typed loosely: strings borrow from the input when they hold no escapes.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) enum Loose<'a> {
    /// The key was not in the object.
    #[default]
    Absent,
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A non-negative integer.
    UInt(u64),
    /// A negative integer.
    Int(i64),
    /// A number with a fraction or exponent (or beyond `u64`).
    Float(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// An array of values.
    Array(Vec<Loose<'a>>),
    /// An object; its contents are skipped, no field needs them.
    Object,
}

impl Loose<'_> {
    /// Absent or `null`: optional fields treat both as "not given", like PHP's `isset`.
    pub(super) fn is_none(&self) -> bool {
        matches!(self, Self::Absent | Self::Null)
    }

    /// The number as `f64`, if it is one.
    pub(super) fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::UInt(n) => Some(n as f64),
            Self::Int(n) => Some(n as f64),
            Self::Float(n) => Some(n),
            _ => None,
        }
    }
}

/// A push payload: a string is sent as is, any other value as its compact JSON.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Data<'a> {
    /// A JSON string, unescaped.
    Str(Cow<'a, str>),
    /// Any other JSON value.
    Json(Value),
}

/// The known keys of one object. Everything else in the object is skipped unread.
#[derive(Debug, Default)]
pub(super) struct Fields<'a> {
    pub(super) cmd: Loose<'a>,
    pub(super) uid: Loose<'a>,
    pub(super) broadcast: Loose<'a>,
    pub(super) uids: Loose<'a>,
    pub(super) group: Loose<'a>,
    pub(super) all: Loose<'a>,
    pub(super) data: Option<Data<'a>>,
    pub(super) delay: Loose<'a>,
    pub(super) at: Loose<'a>,
    pub(super) id: Loose<'a>,
    pub(super) limit: Loose<'a>,
    pub(super) offset: Loose<'a>,
    pub(super) reason: Loose<'a>,
    pub(super) secret: Loose<'a>,
}

/// The keys push.php's compatibility mode reads: the first pass over every line. Small,
/// unlike [`Fields`], since it is built and moved for every push of a burst.
#[derive(Debug, Default)]
pub(super) struct Head<'a> {
    pub(super) cmd: Loose<'a>,
    pub(super) uid: Loose<'a>,
    pub(super) broadcast: Loose<'a>,
}

/// A set of known keys that [`scan`] fills; every other key of the object is skipped.
pub(super) trait Keys<'de>: Default {
    /// Reads the value of `key` from `map` if this set keeps it; `false` if it does not
    /// (the caller skips the value then).
    fn read<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error>;
}

impl<'de> Keys<'de> for Head<'de> {
    fn read<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        let slot = match key {
            "cmd" => &mut self.cmd,
            "uid" => &mut self.uid,
            "broadcast" => &mut self.broadcast,
            _ => return Ok(false),
        };
        *slot = map.next_value()?;
        Ok(true)
    }
}

impl<'de> Keys<'de> for Fields<'de> {
    fn read<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        if key == "data" {
            self.data = Some(map.next_value()?);
        } else if let Some(slot) = self.slot(key) {
            *slot = map.next_value()?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }
}

impl<'a> Fields<'a> {
    /// The slot of the known key `key`; `None` for `data` (not a [`Loose`]) and unknown keys.
    fn slot(&mut self, key: &str) -> Option<&mut Loose<'a>> {
        Some(match key {
            "cmd" => &mut self.cmd,
            "uid" => &mut self.uid,
            "broadcast" => &mut self.broadcast,
            "uids" => &mut self.uids,
            "group" => &mut self.group,
            "all" => &mut self.all,
            "delay" => &mut self.delay,
            "at" => &mut self.at,
            "id" => &mut self.id,
            "limit" => &mut self.limit,
            "offset" => &mut self.offset,
            "reason" => &mut self.reason,
            "secret" => &mut self.secret,
            _ => return None,
        })
    }

    /// Sets the known key `key` (other keys are ignored). `data` takes a string as is.
    pub(super) fn set(&mut self, key: &str, value: Loose<'a>) {
        if key == "data" {
            self.data = Some(match value {
                Loose::Str(s) => Data::Str(s),
                Loose::UInt(n) => Data::Json(n.into()),
                Loose::Bool(b) => Data::Json(b.into()),
                _ => Data::Json(Value::Null),
            });
        } else if let Some(slot) = self.slot(key) {
            *slot = value;
        }
    }
}

/// A push.php line as nearly every backend writes it, read by serde's derive in one pass:
/// an object without `cmd`, whose `uid` (if any) is a string and `broadcast` (if any) a
/// boolean, each key at most once: ~220 fewer instructions per line than [`scan`] with
/// its loose values (3,541 -> 3,323 for the daemon, `bench/instr.sh`). Anything else fails
/// here and is read by [`scan`], whose answer is the precise one; so this pass can only
/// agree with it (`command`'s tests check that on a corpus of odd lines).
#[derive(Debug, Deserialize)]
pub(super) struct CompatLine<'a> {
    #[serde(borrow, default)]
    uid: Option<Key<'a>>,
    #[serde(default)]
    pub(super) broadcast: Option<bool>,
    /// `cmd`, present only in an extended command: its value (even `null`) fails the pass
    /// at once.
    #[serde(rename = "cmd", default)]
    _cmd: NotCompat,
}

impl<'a> CompatLine<'a> {
    /// Reads `line` if it has the common shape; `None` otherwise (then use [`scan`]).
    pub(super) fn read(line: &'a [u8]) -> Option<Self> {
        // Only an object: the derive would also take an array, field by field.
        let first = line.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'{') {
            return None;
        }
        serde_json::from_str(utf8(line)?).ok()
    }

    /// The `uid` string, if one was given.
    pub(super) fn uid(self) -> Option<Cow<'a, str>> {
        self.uid.map(|Key(uid)| uid)
    }
}

/// The value of `cmd`: an extended command is never read by [`CompatLine`].
#[derive(Debug, Default)]
struct NotCompat;

impl<'de> Deserialize<'de> for NotCompat {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("an extended command"))
    }
}

/// `line` as text, if it is UTF-8 throughout, as JSON must be (RFC 8259 §8.1). serde's
/// byte reader checks only the strings it keeps, but a push.php line goes on whole as a
/// WebSocket text frame, which a browser refuses (1007) unless all of it is UTF-8. One pass
/// over the line is also cheaper than one per key and value.
fn utf8(line: &[u8]) -> Option<&str> {
    std::str::from_utf8(line).ok()
}

/// Why the input could not be scanned at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScanError {
    /// Not valid JSON (or trailing bytes after it).
    NotJson,
    /// Valid JSON, but not an object.
    NotObject,
}

/// Scans `line` as one JSON object, keeping the keys of `K`: [`Head`] allocates nothing
/// for a push.php line whose strings have no escapes.
pub(super) fn scan<'a, K: Keys<'a>>(line: &'a [u8]) -> Result<K, ScanError> {
    utf8(line).ok_or(ScanError::NotJson)?;
    // The byte reader, though the line is known to be text: then [`CompatLine`] is the one
    // user of serde's str reader, and the compiler inlines that reader's map loop into it
    // (3,044 -> 2,912 instructions a push.php line, `bench/instr.sh daemon` at 4x4).
    let mut de = serde_json::Deserializer::from_slice(line);
    let keys = KeysSeed(PhantomData)
        .deserialize(&mut de)
        .and_then(|keys| de.end().map(|()| keys));
    keys.map_err(|e| {
        // Our visitors accept every value except a top-level non-object, so a data error
        // means "not an object" if the text is JSON at all. Checked only on this cold path.
        if e.is_data() && serde_json::from_slice::<IgnoredAny>(line).is_ok() {
            ScanError::NotObject
        } else {
            ScanError::NotJson
        }
    })
}

/// Whether the object in `line` has the top-level key `key` (compared as written, escapes
/// not decoded). A lexical walk without recursion or allocation: it answers for lines too
/// deep or too broken for [`scan`], so such a line can still be told apart by its mode.
pub(super) fn has_top_level_key(line: &[u8], key: &[u8]) -> bool {
    let (mut depth, mut i) = (0usize, 0usize);
    while i < line.len() {
        match line[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                let start = i + 1;
                i = start;
                while i < line.len() && line[i] != b'"' {
                    i += if line[i] == b'\\' { 2 } else { 1 };
                }
                let text = &line[start..i.min(line.len())];
                let next = line[(i + 1).min(line.len())..]
                    .iter()
                    .find(|b| !b.is_ascii_whitespace());
                if depth == 1 && next == Some(&b':') && text == key {
                    return true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Deserializes a [`Keys`] set.
struct KeysSeed<K>(PhantomData<K>);

impl<'de, K: Keys<'de>> DeserializeSeed<'de> for KeysSeed<K> {
    type Value = K;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, K: Keys<'de>> Visitor<'de> for KeysSeed<K> {
    type Value = K;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys = K::default();
        while let Some(Key(key)) = map.next_key()? {
            if !keys.read(&key, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(keys)
    }
}

/// A string borrowed unless it has escapes, read as a string directly, not as a [`Loose`]
/// value: an object's keys (every line has several), and [`CompatLine`]'s `uid`.
#[derive(Debug)]
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor(PhantomData))
    }
}

struct KeyVisitor<'a>(PhantomData<&'a str>);

impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
    type Value = Key<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

impl<'de> Deserialize<'de> for Loose<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

/// Builds a [`Loose`] from whatever value comes.
struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Loose::Bool(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Loose::UInt(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(u64::try_from(v).map_or(Loose::Int(v), Loose::UInt))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Loose::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Loose::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Object)
    }
}

impl<'de> Deserialize<'de> for Data<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DataVisitor)
    }
}

/// Builds a [`Data`]: strings borrowed when possible, anything else as a [`Value`].
struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = Data<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Data::Json(Value::Null))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Data::Json(Value::Bool(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Data::Json(v.into()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Data::Json(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // JSON has no NaN or infinity, so `from(f64)` never yields `null` here.
        Ok(Data::Json(v.into()))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Data::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Data::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Data::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Data::Json(Value::Array(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = Map::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            object.insert(k, v);
        }
        Ok(Data::Json(Value::Object(object)))
    }
}
