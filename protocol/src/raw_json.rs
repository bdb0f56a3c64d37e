//! A JSON value kept as the text it arrived as.
//!
//! A script's result goes from the executor's line to the caller's answer, to history and to a
//! completion callback without the daemon ever looking inside it; building a tree of it only
//! to write the same text out again costs more than everything else the daemon does for a
//! large result. So it is validated once, where it is read, and then carried as text, written
//! out verbatim. Valid JSON is not enough for that: it must also be what a tree could have been
//! built from (no deeper than serde_json's limit, no number beyond a double's range), so every
//! reader of the record, the daemon's own included, can still parse it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// Nesting levels a result may have. serde_json refuses a document's 128th level, and a result
/// travels inside envelopes two deep at most (a record in a list of records, or in an event), so
/// this leaves them room: any reader can still parse whatever holds the result.
pub const MAX_NESTING: usize = 125;

/// Valid JSON text, at most [`MAX_NESTING`] levels deep.
#[derive(Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// Takes `raw` when a tree could be built from it: at most [`MAX_NESTING`] levels deep,
    /// every number within a double's range.
    pub fn new(raw: Box<RawValue>) -> Result<Self, String> {
        check(raw.get())?;
        Ok(RawJson(raw))
    }

    /// The text of `value`.
    pub fn from_value(value: &Value) -> Self {
        // A `Value` always serialises, and to valid JSON text that `RawValue` accepts; the
        // fallback is unreachable but keeps this infallible without a panic.
        let raw =
            serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned());
        RawJson(raw)
    }

    /// The tree of it (for the few readers that look inside).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

/// How deeply `json` nests arrays and objects; brackets inside strings do not count. Any bytes
/// are accepted (a request body is measured before it is parsed, so a deep one costs no
/// recursion).
pub fn nesting(json: &[u8]) -> usize {
    scan(json, |_| Ok(())).unwrap_or(usize::MAX)
}

/// `json` without the whitespace between its tokens (strings are copied as they are). A payload
/// is carried inside one line of the executor protocol, so the line breaks a caller's
/// pretty-printed body has between tokens must go; the rest of the text stays as it was sent.
pub fn minify(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                let end = (i + 1).min(json.len());
                out.extend_from_slice(&json[start..end]);
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            other => out.push(other),
        }
        i += 1;
    }
    out
}

/// Whether `text` (valid JSON) is what a tree could have been built from within its envelopes:
/// the nesting of its arrays and objects, and the range of its numbers.
fn check(text: &str) -> Result<(), String> {
    let depth = scan(text.as_bytes(), |number| {
        let number = std::str::from_utf8(number).unwrap_or_default();
        if number.parse::<f64>().is_ok_and(f64::is_finite) {
            Ok(())
        } else {
            Err(format!(
                "the number {number:.40} is beyond a double's range"
            ))
        }
    })?;
    if depth > MAX_NESTING {
        return Err(format!("the value nests deeper than {MAX_NESTING} levels"));
    }
    Ok(())
}

/// One pass over `json`: the deepest nesting, with every number outside strings shown to
/// `number` on the way (its error ends the pass).
fn scan(json: &[u8], mut number: impl FnMut(&[u8]) -> Result<(), String>) -> Result<usize, String> {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                // To the closing quote; an escaped character is skipped whole.
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i + 1 < json.len()
                    && matches!(json[i + 1], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                number(&json[start..=i])?;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(deepest)
}

/// `null`: what a record read from before it had a payload stands for.
impl Default for RawJson {
    fn default() -> Self {
        RawJson(RawValue::NULL.to_owned())
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        RawJson::new(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn minify_drops_the_whitespace_between_tokens_and_keeps_strings_whole() {
        let pretty = b"{\n  \"a b\": [1, 2.5e3,\r\n\t\"x \\\" \\n y\"],\n  \"c\" : { }\n}\n";
        let min = minify(pretty);
        assert_eq!(
            std::str::from_utf8(&min).unwrap(),
            r#"{"a b":[1,2.5e3,"x \" \n y"],"c":{}}"#
        );
        assert!(!min.contains(&b'\n'));
        assert_eq!(
            serde_json::from_slice::<Value>(&min).unwrap(),
            serde_json::from_slice::<Value>(pretty).unwrap()
        );
        assert_eq!(minify(br#""  \\""#), br#""  \\""#);
    }

    #[test]
    fn it_takes_what_a_reader_can_parse_in_its_envelopes_and_refuses_deeper() {
        let fits = nested(MAX_NESTING);
        let raw = serde_json::from_str::<RawJson>(&fits).unwrap();
        // A list of records holding it: still within serde_json's limit.
        let enveloped = format!(r#"[{{"result":{}}}]"#, raw.get());
        assert!(serde_json::from_str::<Value>(&enveloped).is_ok());
        let deeper = nested(MAX_NESTING + 1);
        let e = serde_json::from_str::<RawJson>(&deeper).unwrap_err();
        assert!(e.to_string().contains("deeper than 125 levels"), "{e}");
    }

    #[test]
    fn numbers_beyond_a_double_are_refused_as_a_tree_would_refuse_them() {
        for text in [
            "1e400",
            "[-1e400]",
            &format!("{{\"n\":{}}}", "9".repeat(400)),
        ] {
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
            let e = serde_json::from_str::<RawJson>(text).unwrap_err();
            assert!(e.to_string().contains("beyond a double's range"), "{e}");
        }
        for text in [
            "-0",
            "1.5e300",
            "18446744073709551616",
            "-9223372036854775809",
            "[0,-1e-400]",
        ] {
            assert!(serde_json::from_str::<Value>(text).is_ok(), "{text}");
            assert!(serde_json::from_str::<RawJson>(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn nesting_ignores_brackets_in_strings_and_takes_any_bytes() {
        assert_eq!(nesting(br#"{"a":"[[[[{{{"}"#), 1);
        assert_eq!(nesting(br#"[[[1]],{"x":[2]}]"#), 3);
        assert_eq!(nesting(br#"{"a":"\"[["}"#), 1);
        assert_eq!(nesting(b"[[[\"\\"), 3);
        assert_eq!(nesting(&[0xff, b'[', 0xfe]), 1);
    }

    #[test]
    fn brackets_and_digits_inside_strings_do_not_count() {
        let text = format!(r#"{{"a":"{}","b":"\"[[[\\","c":"1e999"}}"#, "[".repeat(500));
        let raw = serde_json::from_str::<RawJson>(&text).unwrap();
        assert_eq!(raw.get(), text);
    }

    #[test]
    fn the_text_goes_out_as_it_came_in() {
        let text = r#"{"z":1,"a":[1.50,"\u00e9",null]}"#;
        let raw: RawJson = serde_json::from_str(text).unwrap();
        #[derive(Serialize)]
        struct Outer<'a> {
            result: &'a RawJson,
        }
        let out = serde_json::to_string(&Outer { result: &raw }).unwrap();
        assert_eq!(out, format!(r#"{{"result":{text}}}"#));
        assert_eq!(
            raw.to_value().unwrap(),
            json!({"z": 1, "a": [1.5, "é", null]})
        );
        assert_eq!(
            RawJson::from_value(&json!({"k": [1]})).get(),
            r#"{"k":[1]}"#
        );
    }
}
