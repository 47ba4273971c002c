//! Plain-text tables for the command line: columns as wide as their widest cell, so
//! values line up under their headers whatever their length.

use std::fmt::Write;

/// How a column's cells sit under its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    /// Text: starts under the header's first character.
    Left,
    /// Numbers: ends under the header's last character.
    Right,
}

/// Renders `rows` under `headers`, columns two spaces apart, one line per row, with no
/// trailing spaces. Control characters in cells are escaped (`\n`, `\u{1b}`): a uid is
/// chosen by a browser and must not move the operator's cursor or recolour the terminal.
pub(crate) fn render(headers: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| printable(cell)).collect())
        .collect();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            rows.iter()
                .filter_map(|row| row.get(i))
                .map(|cell| cell.chars().count())
                .chain([name.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let names: Vec<String> = headers.iter().map(|(name, _)| name.to_string()).collect();
    for row in std::iter::once(&names).chain(&rows) {
        let mut line = String::new();
        for (i, ((_, align), width)) in headers.iter().zip(&widths).enumerate() {
            let cell = row.get(i).map_or("", String::as_str);
            if i > 0 {
                line.push_str("  ");
            }
            let _ = match align {
                Align::Left => write!(line, "{cell:<width$}"),
                Align::Right => write!(line, "{cell:>width$}"),
            };
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `cell` with control characters escaped.
fn printable(cell: &str) -> String {
    if !cell.chars().any(char::is_control) {
        return cell.to_string();
    }
    cell.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let text = render(
            &[
                ("id", Align::Right),
                ("uid", Align::Left),
                ("n", Align::Right),
            ],
            &[
                vec!["7".into(), "a-very-long-uid".into(), "12345".into()],
                vec!["1000".into(), "b".into(), "0".into()],
            ],
        );
        assert_eq!(
            text,
            "  id  uid                  n\n   7  a-very-long-uid  12345\n1000  b                    0\n"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let text = render(&[("uid", Align::Left)], &[vec!["x\u{1b}[2J\ny".into()]]);
        assert_eq!(text, "uid\nx\\u{1b}[2J\\ny\n");
    }
}
