//! Lenient deserialisers shared by the wire types (`null` as default, JSON as text).

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

/// Deserializes `null` as the type's default.
pub(super) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Deserializes a string, or any other JSON value as its compact text (`null` → "").
pub(super) fn json_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Null => Ok(String::new()),
        other => serde_json::to_string(&other).map_err(de::Error::custom),
    }
}
