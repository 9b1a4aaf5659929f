//! Printing results: JSON for scripts (`--json`), short aligned text for people.

/// A unix time as RFC 3339 (UTC, seconds), for any time a database may hold.
pub fn time(unix: i64) -> String {
    postern_core::time::rfc3339(unix)
}

/// Prints `value` as JSON, or `text` for people.
pub fn emit(json: bool, value: &serde_json::Value, text: impl FnOnce() -> String) {
    if json {
        println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
    } else {
        let t = text();
        if t.ends_with('\n') { print!("{t}") } else { println!("{t}") }
    }
}

/// Rows of columns, left-aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        parts.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out += &line(row.iter().map(String::as_str).collect());
    }
    out
}
