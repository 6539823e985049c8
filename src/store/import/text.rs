//! Parsing the text formats published benchmarks come in, with errors that name the file and the
//! line (and column) where the input went wrong.

use std::path::Path;

use crate::{Error, Result};

/// Parses JSON. Python's `json` module writes the non-standard tokens `NaN`, `Infinity` and
/// `-Infinity` (NASLib's files contain them); outside strings they are read as the strings
/// `"NaN"`, `"Infinity"` and `"-Infinity"`, which [`json_f64`] turns back into numbers.
pub fn parse_json(path: &Path, bytes: &[u8]) -> Result<serde_json::Value> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_column(bytes, e.valid_up_to());
        Error::input_file(path, format!("malformed JSON at line {line}, column {column}: not valid UTF-8"))
    })?;
    let cleaned = quote_non_finite(text);
    serde_json::from_str(&cleaned).map_err(|e| {
        Error::input_file(
            path,
            format!("malformed JSON at line {}, column {}: {}", e.line(), e.column(), json_reason(&e)),
        )
    })
}

/// serde_json's message without its own " at line L column C" suffix.
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(pos) => text[..pos].to_string(),
        None => text,
    }
}

fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

/// Wraps bare `NaN`, `Infinity` and `-Infinity` tokens (outside strings) in quotes.
fn quote_non_finite(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("NaN") && !text.contains("Infinity") {
        return std::borrow::Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 64);
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        let token =
            ["-Infinity", "Infinity", "NaN"].into_iter().find(|t| bytes[i..].starts_with(t.as_bytes()));
        if let Some(token) = token {
            out.push_str(&text[copied..i]);
            out.push('"');
            out.push_str(token);
            out.push('"');
            i += token.len();
            copied = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

/// A JSON number, or one of the quoted non-finite tokens [`parse_json`] produces.
pub fn json_f64(value: &serde_json::Value) -> Option<f64> {
    match value {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// A parsed CSV file: the header and the records with their 1-based line numbers.
#[derive(Clone, Debug)]
pub struct Csv {
    pub header: Vec<String>,
    pub rows: Vec<CsvRow>,
}

#[derive(Clone, Debug)]
pub struct CsvRow {
    /// Line of the file the record starts on (the header is line 1).
    pub line: usize,
    pub fields: Vec<String>,
}

impl Csv {
    /// Position of a header column.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Position of a column the format requires; bad input naming the file otherwise.
    pub fn require(&self, path: &Path, name: &str) -> Result<usize> {
        self.column(name).ok_or_else(|| {
            Error::input_file(
                path,
                format!("line 1: the header lacks the column '{name}' (it has {})", self.header.join(", ")),
            )
        })
    }
}

/// Parses RFC 4180 CSV (comma separated, `"` quoting with `""` escapes, LF or CRLF line ends).
/// Every record must have as many fields as the header.
pub fn parse_csv(path: &Path, bytes: &[u8]) -> Result<Csv> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_column(bytes, e.valid_up_to());
        Error::input_file(path, format!("malformed CSV at line {line}, column {column}: not valid UTF-8"))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records: Vec<CsvRow> = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut record_line = 1;
    let mut chars = text.chars().peekable();
    let mut in_quotes = false;
    let mut field_was_quoted = false;
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if at_field_start => {
                in_quotes = true;
                field_was_quoted = true;
                at_field_start = false;
            }
            '"' => {
                return Err(Error::input_file(
                    path,
                    format!(
                        "malformed CSV at line {line}: a quote inside an unquoted field (field {})",
                        fields.len() + 1
                    ),
                ));
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                field_was_quoted = false;
                at_field_start = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                fields.push(std::mem::take(&mut field));
                let done = std::mem::take(&mut fields);
                if !(done.len() == 1 && done[0].is_empty() && !field_was_quoted) {
                    records.push(CsvRow { line: record_line, fields: done });
                }
                field_was_quoted = false;
                at_field_start = true;
                line += 1;
                record_line = line;
            }
            _ => {
                if field_was_quoted {
                    return Err(Error::input_file(
                        path,
                        format!(
                            "malformed CSV at line {line}: text after the closing quote of field {}",
                            fields.len() + 1
                        ),
                    ));
                }
                at_field_start = false;
                field.push(c);
            }
        }
    }
    if in_quotes {
        return Err(Error::input_file(
            path,
            format!(
                "malformed CSV at line {record_line}: a quoted field is not closed before the end of the file"
            ),
        ));
    }
    if !field.is_empty() || !fields.is_empty() || field_was_quoted {
        fields.push(field);
        records.push(CsvRow { line: record_line, fields });
    }
    let mut iter = records.into_iter();
    let Some(header) = iter.next() else {
        return Err(Error::input_file(path, "malformed CSV: the file is empty (no header line)"));
    };
    let header: Vec<String> = header.fields.into_iter().map(|h| h.trim().to_string()).collect();
    let rows: Vec<CsvRow> = iter.collect();
    for row in &rows {
        if row.fields.len() != header.len() {
            return Err(Error::input_file(
                path,
                format!(
                    "malformed CSV at line {}: {} fields where the header has {}",
                    row.line,
                    row.fields.len(),
                    header.len()
                ),
            ));
        }
    }
    Ok(Csv { header, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_line_numbers() {
        let text = "a,b,c\n\"(1, 2)\",x,\"say \"\"hi\"\"\"\r\n3,4,5\n";
        let csv = parse_csv(Path::new("t.csv"), text.as_bytes()).unwrap();
        assert_eq!(csv.header, ["a", "b", "c"]);
        assert_eq!(csv.rows[0].fields, ["(1, 2)", "x", "say \"hi\""]);
        assert_eq!(csv.rows[1].line, 3);
        let err = parse_csv(Path::new("t.csv"), b"a,b\n1,2\n3\n").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let err = parse_csv(Path::new("t.csv"), b"a,b\n1,\"2\n").unwrap_err();
        assert!(err.to_string().contains("not closed"), "{err}");
        let err = parse_csv(Path::new("t.csv"), b"a,b\n1,x\"y\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn json_non_finite_tokens_and_positions() {
        let v = parse_json(Path::new("t.json"), br#"{"a": -Infinity, "b": "NaN inside", "c": [NaN, 1]}"#)
            .unwrap();
        assert_eq!(json_f64(&v["a"]), Some(f64::NEG_INFINITY));
        assert_eq!(v["b"], "NaN inside");
        assert!(json_f64(&v["c"][0]).is_some_and(f64::is_nan));
        let err = parse_json(Path::new("t.json"), b"{\n  \"a\": 1,\n  \"b\": }").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("t.json") && text.contains("line 3, column"), "{text}");
    }
}
