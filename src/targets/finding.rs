//! Findings: traces of tampering and hiding a responder must see first (a
//! log cleared, history switched off, login records emptied). Each names the
//! file as it is on the machine and where in it, and says in one sentence
//! what it shows, no more than the evidence does. Found where the data is
//! read: the machine's configuration here (`configured/`), the converted
//! logs and the copied files in `collect`; listed in run.json's `findings`
//! and at the top of the report.

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    /// What kind (`security-log-cleared`, `history-off`, …): stable, for filters.
    pub kind: String,
    /// The host's folder name (filled in by collect).
    pub host: String,
    /// The file as on the machine.
    pub path: String,
    /// Where in it: `line 3`, `record 1234`; empty for the file as a whole.
    pub at: String,
    /// When, if the evidence says (ISO 8601, UTC).
    pub time: Option<String>,
    /// What it shows, in one sentence.
    pub meaning: String,
}

impl Finding {
    pub fn new(kind: &str, path: &str, at: String, meaning: String) -> Finding {
        Finding { kind: kind.into(), host: String::new(), path: path.into(), at, time: None, meaning }
    }
}
