//! Request bodies parsed strictly: a JSON object that names one member twice
//! is refused instead of letting the last one win.
//!
//! RFC 8259 §4 leaves duplicate names to the parser ("the behavior of
//! software that receives such an object is unpredictable"), so a proxy or a
//! WAF in front of scimlet may read the first `userName` where scimlet would
//! read the last: a parser differential that lets a request mean two things.
//! SCIM attribute names are case-insensitive (RFC 7643 §2.1), so `userName`
//! and `USERNAME` in one object are the same name twice, and refused too.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value in which no object names a member twice.
pub(crate) struct Strict(pub(crate) Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("a number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        // Folded names seen so far: linear in the object's size, whatever
        // a hostile body holds.
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.to_ascii_lowercase()) {
                return Err(de::Error::custom(format_args!(
                    "an object names {key:?} twice (names are case-insensitive)"
                )));
            }
            let Strict(value) = map.next_value()?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::Strict;
    use serde_json::json;

    fn parse(text: &str) -> Result<serde_json::Value, String> {
        serde_json::from_str::<Strict>(text).map(|s| s.0).map_err(|e| e.to_string())
    }

    #[test]
    fn same_value_as_serde_json_without_duplicates() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": 18446744073709551615}"#;
        assert_eq!(parse(text).unwrap(), serde_json::from_str::<serde_json::Value>(text).unwrap());
        assert_eq!(
            parse(r#"{"userName": "a", "name": {"givenName": "b"}}"#).unwrap(),
            json!({"userName": "a", "name": {"givenName": "b"}})
        );
    }

    #[test]
    fn a_name_twice_in_one_object_is_refused_at_any_depth() {
        assert!(parse(r#"{"userName": "a", "userName": "b"}"#).unwrap_err().contains("\"userName\" twice"));
        assert!(parse(r#"{"userName": "a", "USERNAME": "b"}"#).is_err());
        assert!(parse(r#"{"Operations": [{"op": "add", "op": "remove"}]}"#).is_err());
        // The same name in two different objects is fine.
        assert!(parse(r#"{"a": {"value": 1}, "b": {"value": 2}}"#).is_ok());
    }
}
