//! Provenance rows: who wrote a part of a benchmark, from which inputs (with their SHA-256), with
//! which command and when (RFC 3339, UTC).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::schema::PROVENANCE;
use super::write::Rows;
use crate::Result;

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// `time` as RFC 3339 in UTC with whole seconds, e.g. `2026-11-21T08:03:00Z`.
pub fn rfc3339_utc(time: SystemTime) -> String {
    // Times before 1970 do not occur for files written now; they print as the epoch.
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, (rest % 3600) / 60, rest % 60)
}

/// The current time as RFC 3339 in UTC.
pub fn now_rfc3339() -> String {
    rfc3339_utc(SystemTime::now())
}

/// Proleptic Gregorian (year, month, day) of the day `days` after 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// What an importer records about one run.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    pub source: String,
    /// Input name (a path relative to the imported folder, or a file name) → SHA-256.
    pub inputs: BTreeMap<String, String>,
    /// The command line that wrote the rows.
    pub command: Option<String>,
    /// Options of the run, as JSON.
    pub config: Option<serde_json::Value>,
}

impl Provenance {
    pub fn new(source: &str, command: Option<String>) -> Provenance {
        Provenance { source: source.to_string(), command, ..Default::default() }
    }

    /// Records an input and its bytes' checksum.
    pub fn add_input(&mut self, name: impl Into<String>, bytes: &[u8]) {
        self.inputs.insert(name.into(), sha256_hex(bytes));
    }

    /// The `provenance` row, stamped with the current time.
    pub fn rows(&self) -> Result<Rows> {
        let mut rows = Rows::new(&PROVENANCE);
        let inputs =
            serde_json::to_string(&self.inputs).map_err(|e| crate::Error::Internal(e.to_string()))?;
        rows.push(&[
            ("source", self.source.as_str().into()),
            ("tool_version", crate::VERSION.into()),
            ("config", self.config.as_ref().map(|c| c.to_string()).into()),
            ("inputs", inputs.into()),
            ("command", self.command.clone().into()),
            ("created_at", now_rfc3339().into()),
        ])?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        let at = |s: u64| rfc3339_utc(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_709_164_799), "2024-02-28T23:59:59Z");
        assert_eq!(at(1_795_253_400), "2026-11-21T09:30:00Z");
        assert_eq!(at(4_102_444_800), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn sha256_of_abc() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
