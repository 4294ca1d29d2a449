//! `snapsift timeline`: a sorted CSV timeline of a case from its body file,
//! one row per distinct time of a file, with the mactime-style `macb` flags
//! telling which of its times (modified, accessed, changed, born) it is.

use crate::util::time::Timestamp;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

struct Event<'a> {
    time: i64,
    macb: String,
    fields: Vec<&'a str>,
}

fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// Writes the timeline of `case` between `from` and `to` (inclusive, Unix
/// seconds) to `out`; returns the number of rows.
pub fn write(case: &Path, from: Option<i64>, to: Option<i64>, out: &mut dyn Write) -> Result<usize> {
    let path = case.join("snapsift").join("bodyfile.txt");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {} (is {} a snapsift case folder?)", path.display(), case.display()))?;
    let mut events = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() != 11 {
            continue;
        }
        let times: Vec<i64> = f[7..11].iter().map(|t| t.parse().unwrap_or(0)).collect();
        let mut seen: Vec<i64> = Vec::new();
        // Order a, m, c, b in the file; the flags read m, a, c, b.
        for &t in &[times[1], times[0], times[2], times[3]] {
            if t == 0 || seen.contains(&t) || from.is_some_and(|f| t < f) || to.is_some_and(|e| t > e) {
                continue;
            }
            seen.push(t);
            let flag = |i: usize, c: char| if times[i] == t { c } else { '.' };
            let macb: String = [flag(1, 'm'), flag(0, 'a'), flag(2, 'c'), flag(3, 'b')].iter().collect();
            events.push(Event { time: t, macb, fields: f.clone() });
        }
    }
    events.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.fields[1].cmp(b.fields[1])));
    writeln!(out, "datetime,macb,size,mode,uid,gid,inode,md5,name")?;
    for e in &events {
        let f = &e.fields;
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            Timestamp::new(e.time, 0).iso8601(),
            e.macb,
            f[6],
            f[3],
            f[4],
            f[5],
            f[2],
            f[0],
            csv(f[1])
        )?;
    }
    Ok(events.len())
}
