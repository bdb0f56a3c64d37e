//! The pattern language of `expect` steps: objects match recursively and may leave keys out,
//! arrays and scalars match exactly, `"$any"` matches any value that is present and
//! `"$contains:TEXT"` matches a string containing `TEXT`.

use serde_json::Value;

const ANY: &str = "$any";
const CONTAINS: &str = "$contains:";

/// `Ok` if `got` matches `pattern`; otherwise the JSON pointer of the first mismatch and why.
pub(crate) fn check(pattern: &Value, got: &Value) -> Result<(), String> {
    check_at(pattern, got, &mut String::new())
}

fn check_at(pattern: &Value, got: &Value, at: &mut String) -> Result<(), String> {
    match pattern {
        Value::String(s) if s == ANY => Ok(()),
        Value::String(s) if s.starts_with(CONTAINS) => {
            let needle = &s[CONTAINS.len()..];
            match got {
                Value::String(g) if g.contains(needle) => Ok(()),
                _ => Err(format!(
                    "{}: {got} does not contain {needle:?}",
                    pointer(at)
                )),
            }
        }
        Value::Object(want) => {
            let Value::Object(have) = got else {
                return Err(format!("{}: expected an object, got {got}", pointer(at)));
            };
            for (key, sub) in want {
                let len = at.len();
                at.push('/');
                at.push_str(&key.replace('~', "~0").replace('/', "~1"));
                match have.get(key) {
                    Some(value) => check_at(sub, value, at)?,
                    None => return Err(format!("{}: missing", pointer(at))),
                }
                at.truncate(len);
            }
            Ok(())
        }
        _ if pattern == got => Ok(()),
        _ => Err(format!("{}: expected {pattern}, got {got}", pointer(at))),
    }
}

fn pointer(at: &str) -> &str {
    if at.is_empty() { "at the top" } else { at }
}

#[cfg(test)]
mod tests {
    use super::check;
    use serde_json::json;

    #[test]
    fn object_pattern_ignores_extra_keys() {
        let got = json!({"type":"response","id":"r1","success":true,"result":{"a":1,"b":2}});
        assert!(check(&json!({"id":"r1","result":{"a":1}}), &got).is_ok());
    }

    #[test]
    fn missing_key_is_reported_with_pointer() {
        let err = check(&json!({"result":{"c":1}}), &json!({"result":{"a":1}})).unwrap_err();
        assert_eq!(err, "/result/c: missing");
    }

    #[test]
    fn different_scalar_fails() {
        let err = check(&json!({"success":true}), &json!({"success":false})).unwrap_err();
        assert!(err.contains("/success"), "{err}");
        assert!(check(&json!({"n":1}), &json!({"n":"1"})).is_err());
    }

    #[test]
    fn any_matches_present_values_only() {
        assert!(check(&json!({"pid":"$any"}), &json!({"pid":7})).is_ok());
        assert!(check(&json!({"pid":"$any"}), &json!({"pid":null})).is_ok());
        assert!(check(&json!({"pid":"$any"}), &json!({})).is_err());
    }

    #[test]
    fn contains_matches_substrings_of_strings_only() {
        let p = json!({"message":"$contains:boom"});
        assert!(check(&p, &json!({"message":"ValueError: boom!"})).is_ok());
        assert!(check(&p, &json!({"message":"bang"})).is_err());
        assert!(check(&p, &json!({"message":["boom"]})).is_err());
    }

    #[test]
    fn arrays_match_exactly() {
        assert!(check(&json!({"a":[1,2]}), &json!({"a":[1,2]})).is_ok());
        assert!(check(&json!({"a":[1]}), &json!({"a":[1,2]})).is_err());
        // Elements are values, not patterns: "$any" inside an array is literal.
        assert!(check(&json!({"a":["$any"]}), &json!({"a":[3]})).is_err());
    }

    #[test]
    fn object_pattern_against_non_object_fails() {
        assert!(check(&json!({"result":{"x":1}}), &json!({"result":null})).is_err());
    }

    #[test]
    fn pointer_escapes_slashes() {
        let err = check(&json!({"a/b":1}), &json!({})).unwrap_err();
        assert_eq!(err, "/a~1b: missing");
    }
}
