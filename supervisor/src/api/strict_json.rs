//! JSON parsing that refuses an object with the same key twice.
//!
//! serde_json keeps the last of two equal keys, and other parsers keep the first: a payload
//! `{"amount": 1, "amount": 1000}` would pass the params schema with one value and reach a
//! script that reads the other, and a manifest with two `runtime`s registers whichever came
//! last. The API therefore takes no such document. The check is the return value of the map
//! insert that building the value does anyway, so it costs nothing on the hot path.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `bytes` as one JSON document whose objects have unique keys.
pub(crate) fn from_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Checks that `bytes` is one JSON document whose objects have unique keys, building nothing:
/// for a payload that is carried on as the text it came in.
pub(crate) fn check(bytes: &[u8]) -> serde_json::Result<()> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    UniqueKeys.deserialize(&mut de)?;
    de.end()
}

/// A seed that builds a `Value`, refusing duplicate keys at every depth.
#[derive(Clone, Copy)]
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
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

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Strict.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(Strict)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Strict)?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {key:?} in an object"
                )));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A seed that reads a document and keeps only each object's keys, to refuse a repeated one.
#[derive(Clone, Copy)]
struct UniqueKeys;

impl<'de> DeserializeSeed<'de> for UniqueKeys {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(UniqueKeys)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Most objects have a handful of keys: comparing each new one with those is cheaper
        // than hashing, and a set takes over for the rare large object.
        const SCANNED: usize = 16;
        let mut few: Vec<Cow<'de, str>> = Vec::new();
        let mut many: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            map.next_value_seed(UniqueKeys)?;
            let repeated = if many.is_empty() && few.len() < SCANNED {
                if few.contains(&key) {
                    Some(key)
                } else {
                    few.push(key);
                    None
                }
            } else {
                many.extend(few.drain(..));
                many.replace(key)
            };
            if let Some(key) = repeated {
                return Err(de::Error::custom(format_args!(
                    "duplicate key {key:?} in an object"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let e = from_slice(br#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate key \"a\""), "{e}");
        let e = from_slice(br#"{"m": {"runtime": "bash", "x": [{"k": 1, "k": 1}]}}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate key \"k\""), "{e}");
    }

    #[test]
    fn the_check_refuses_what_the_parser_refuses_and_takes_what_it_takes() {
        for bad in [
            &br#"{"a": 1, "a": 2}"#[..],
            br#"[{"k": {"x": 1, "x": 1}}]"#,
            br#"{"a\u0062": 1, "ab": 2}"#,
            b"{} x",
            b"[1,]",
            b"1e400",
        ] {
            assert!(from_slice(bad).is_err(), "{}", String::from_utf8_lossy(bad));
            assert!(check(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let wide = |repeat: bool| {
            let mut keys: Vec<String> = (0..40).map(|i| format!("\"k{i}\": {i}")).collect();
            if repeat {
                keys.push("\"k3\": 0".into());
            }
            format!("{{{}}}", keys.join(","))
        };
        check(wide(false).as_bytes()).unwrap();
        let e = check(wide(true).as_bytes()).unwrap_err();
        assert!(e.to_string().contains("duplicate key \"k3\""), "{e}");
        let good = br#"{"a": [1, -2, 3.5, "s", null, true, {"b": {}, "a": 0}], "c": 18446744073709551615, "d": "\u00e9"}"#;
        from_slice(good).unwrap();
        check(good).unwrap();
    }

    #[test]
    fn everything_else_parses_as_serde_json_does() {
        let text = br#"{"a": [1, -2, 3.5, "s", null, true, {"b": {}}], "c": 18446744073709551615, "d": "\u00e9"}"#;
        assert_eq!(
            from_slice(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
        assert!(from_slice(b"{} x").is_err(), "trailing characters");
        assert!(from_slice(b"[1,]").is_err());
    }
}
