//! Tables for people: columns picked out of JSON answers by JSON pointer, so a daemon that
//! adds fields changes nothing and one that misses a field shows `-`.

use comfy_table::{Table, presets};
use serde_json::Value;

use super::output::printable;

/// How a cell shows its value.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// As it comes.
    Plain,
    /// A version id shortened to `sha256:` and 12 hex digits.
    ShortId,
    /// A duration in milliseconds, one decimal.
    Millis,
    /// A list (joined) or an object (its keys joined), for tags.
    Names,
    /// Whatever the function makes of the (present, non-null) value, for cells that combine
    /// several fields of an object.
    With(fn(&Value) -> String),
}

/// One column: a header and the pointers to try, first present wins.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header text.
    pub header: &'static str,
    /// JSON pointers into each row.
    pub pointers: &'static [&'static str],
    /// Cell format.
    pub format: Format,
}

/// Shorthand for a [`Column`].
pub const fn col(
    header: &'static str,
    pointers: &'static [&'static str],
    format: Format,
) -> Column {
    Column {
        header,
        pointers,
        format,
    }
}

/// Renders an array of objects, one row each.
pub fn render_rows(rows: &[Value], columns: &[Column]) -> String {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table.set_header(columns.iter().map(|c| c.header));
    for row in rows {
        table.add_row(columns.iter().map(|c| {
            let value = c
                .pointers
                .iter()
                .filter_map(|p| row.pointer(p))
                .find(|v| !v.is_null());
            cell(value, c.format)
        }));
    }
    trim_lines(&table.to_string())
}

/// Renders an object as `key value` lines; nested objects as indented JSON.
pub fn render_fields(object: &Value) -> String {
    let Some(map) = object.as_object() else {
        return serde_json::to_string_pretty(object).unwrap_or_default();
    };
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    for (key, value) in map {
        let shown = match value {
            Value::Object(_) => serde_json::to_string_pretty(value).unwrap_or_default(),
            Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
                serde_json::to_string_pretty(value).unwrap_or_default()
            }
            _ => cell(Some(value), Format::Plain),
        };
        table.add_row(vec![key.clone(), shown]);
    }
    trim_lines(&table.to_string())
}

/// Renders `key value` lines, keys aligned, in the given order. A value may span lines (a
/// changelog); each line is shown [`printable`].
pub fn render_pairs(pairs: &[(String, String)]) -> String {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    for (key, value) in pairs {
        let lines: Vec<_> = value.split('\n').map(printable).collect();
        table.add_row(vec![key.clone(), lines.join("\n")]);
    }
    trim_lines(&table.to_string())
}

fn cell(value: Option<&Value>, format: Format) -> String {
    let Some(value) = value else {
        return "-".to_owned();
    };
    match (value, format) {
        (Value::Null, _) => "-".to_owned(),
        (_, Format::With(show)) => printable(&show(value)).into_owned(),
        (Value::String(s), Format::ShortId) => printable(&short_id(s)).into_owned(),
        (Value::String(s), _) => printable(s).into_owned(),
        (Value::Number(n), Format::Millis) => match n.as_f64() {
            Some(ms) => format!("{ms:.1}"),
            None => n.to_string(),
        },
        (Value::Number(n), _) => n.to_string(),
        (Value::Bool(b), _) => if *b { "yes" } else { "no" }.to_owned(),
        (Value::Array(items), _) => items
            .iter()
            .map(|i| cell(Some(i), format))
            .collect::<Vec<_>>()
            .join(", "),
        (Value::Object(map), Format::Names) => map.keys().cloned().collect::<Vec<_>>().join(", "),
        (Value::Object(_), _) => value.to_string(),
    }
}

/// A byte count in binary units, one decimal above bytes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // f64 loses nothing a one-decimal display would show.
    let mut size = bytes as f64 / 1024.0;
    let mut unit = 0;
    while size >= 1024.0 && unit + 1 < UNITS.len() {
        size /= 1024.0;
        unit += 1;
    }
    format!("{size:.1} {}", UNITS[unit])
}

/// `sha256:` and the first 12 hex digits: enough to tell versions apart in a table.
pub fn short_id(id: &str) -> String {
    match id.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 => format!("sha256:{}", hex.get(..12).unwrap_or(hex)),
        _ => id.to_owned(),
    }
}

// The NOTHING preset pads every cell, leaving a leading blank and trailing ones on each line.
fn trim_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        out.push_str(line.strip_prefix(' ').unwrap_or(line).trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn picks_cells_by_pointer_and_format() {
        let rows = [
            json!({"name": "hello", "latest_version": "sha256:0123456789abcdef", "tags": ["a", "b"],
                   "disabled": false, "timings": {"total_ms": 1.26}}),
            json!({"name": "other", "latest": "sha256:ff", "tags": {"prod": "sha256:1"},
                   "disabled": true}),
        ];
        let columns = [
            col("NAME", &["/name"], Format::Plain),
            col("LATEST", &["/latest_version", "/latest"], Format::ShortId),
            col("TAGS", &["/tags"], Format::Names),
            col("DISABLED", &["/disabled"], Format::Plain),
            col("MS", &["/timings/total_ms"], Format::Millis),
        ];
        let text = render_rows(&rows, &columns);
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0], ["NAME", "LATEST", "TAGS", "DISABLED", "MS"]);
        assert_eq!(
            lines[1],
            ["hello", "sha256:0123456789ab", "a,", "b", "no", "1.3"]
        );
        assert_eq!(lines[2], ["other", "sha256:ff", "prod", "yes", "-"]);
        assert!(
            text.lines()
                .all(|l| !l.ends_with(' ') && !l.starts_with(' '))
        );
        // A registrant's text cannot break the table or drive the terminal.
        let hostile = [json!({"name": "x\u{1b}[2J", "latest": "a\nb"})];
        let text = render_rows(&hostile, &columns[..2]);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.contains("x\\u{1b}[2J") && text.contains("a\\nb"),
            "{text}"
        );
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(432_345_678), "412.3 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn function_cells_see_the_whole_value_and_absent_ones_stay_dashes() {
        fn pair(v: &Value) -> String {
            format!("{}/{}", v["a"], v["b"])
        }
        let rows = [json!({"n": "x", "c": {"a": 1, "b": 2}}), json!({"n": "y"})];
        let columns = [
            col("N", &["/n"], Format::Plain),
            col("C", &["/c"], Format::With(pair)),
        ];
        let text = render_rows(&rows, &columns);
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[1], ["x", "1/2"]);
        assert_eq!(lines[2], ["y", "-"]);
    }

    #[test]
    fn fields_render_nested_values_as_json() {
        let text = render_fields(&json!({"name": "x", "manifest": {"runtime": "bash"}}));
        assert!(text.contains("name"));
        assert!(text.contains("\"runtime\": \"bash\""), "{text}");
    }
}
