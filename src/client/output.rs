//! How the client subcommands print: aligned tables with short ids by default (as
//! crictl and docker do), or the same rows as JSON or YAML for scripts.

use serde::Serialize;

use super::ClientError;
use crate::config::OutputFormat;

/// Columns are separated by this much space at least (crictl's tabwriter padding).
const GAP: &str = "   ";

/// How many characters of an id a table shows: crictl's and docker's 13 (12 for the
/// digest's hex plus one, enough to be unique on any real node).
pub const SHORT_ID: usize = 13;

/// A table of text cells, each column as wide as its widest cell.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str(GAP);
                }
                line.push_str(cell);
                let pad = widths[c].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Prints `rows` in `format`; a table is built by `table` only when asked for.
pub fn print<T: Serialize + ?Sized>(
    format: OutputFormat,
    rows: &T,
    table: impl FnOnce() -> Table,
) -> Result<(), ClientError> {
    let text = match format {
        OutputFormat::Table => table().render(),
        OutputFormat::Json => encode_json(rows)?,
        OutputFormat::Yaml => serde_yaml::to_string(rows).map_err(|e| ClientError::Encode {
            format: "YAML",
            detail: e.to_string(),
        })?,
    };
    print!("{text}");
    Ok(())
}

pub fn encode_json<T: Serialize + ?Sized>(value: &T) -> Result<String, ClientError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| ClientError::Encode {
        format: "JSON",
        detail: e.to_string(),
    })?;
    text.push('\n');
    Ok(text)
}

/// An id as tables show it: without its algorithm, cut to [`SHORT_ID`] characters.
pub fn short_id(id: &str) -> &str {
    let hex = id.split_once(':').map_or(id, |(_, hex)| hex);
    match hex.char_indices().nth(SHORT_ID) {
        Some((end, _)) => &hex[..end],
        None => hex,
    }
}

/// Time since `then_ns` (Unix nanoseconds) in kubectl's style: `42s`, `5m`, `3h`, `2d`.
pub fn age(then_ns: i64, now_ns: i64) -> String {
    if then_ns <= 0 {
        return "-".into();
    }
    let s = (now_ns.saturating_sub(then_ns) / 1_000_000_000).max(0);
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// A byte count with three significant digits in SI units, as docker prints sizes
/// (`4.27MB`, `115kB`, `512B`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 999.5 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{n}B");
    }
    let digits = if value >= 99.95 {
        0
    } else if value >= 9.995 {
        1
    } else {
        2
    };
    format!("{value:.digits$}{}", UNITS[unit])
}

/// Now, in Unix nanoseconds (the CRI's unit for `created_at`).
pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// A CRI timestamp (Unix nanoseconds) as RFC 3339, for JSON and YAML.
pub fn rfc3339(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_every_column_and_trim_line_ends() {
        let mut t = Table::new(&["CONTAINER", "NAME", "STATE"]);
        t.row(vec!["3f2a91c0aa11b".into(), "web".into(), "Running".into()]);
        t.row(vec!["77aa".into(), "a-long-name".into(), "".into()]);
        assert_eq!(
            t.render(),
            "CONTAINER       NAME          STATE\n\
             3f2a91c0aa11b   web           Running\n\
             77aa            a-long-name\n"
        );
    }

    #[test]
    fn ids_are_shortened_like_crictl() {
        let digest = "sha256:4f1c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a";
        assert_eq!(short_id(digest), "4f1c2a9b8d7e6");
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id("0123456789abcdef"), "0123456789abc");
    }

    #[test]
    fn ages_and_sizes_read_like_kubectl_and_docker() {
        let s = 1_000_000_000i64;
        let now = 1_000_000 * s;
        assert_eq!(age(now - 42 * s, now), "42s");
        assert_eq!(age(now - 300 * s, now), "5m");
        assert_eq!(age(now - 3 * 3600 * s, now), "3h");
        assert_eq!(age(now - 3 * 86400 * s, now), "3d");
        assert_eq!(age(0, now), "-");
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(4_270_000), "4.27MB");
        assert_eq!(bytes(115_000), "115kB");
        assert_eq!(bytes(31_500_000), "31.5MB");
        assert_eq!(bytes(999_999), "1.00MB");
    }
}
