//! The report's activity chart: one row per host (the busiest first, the
//! case's total on top), time across in UTC, each cell's colour the number
//! of events in that hour (or day) on a log scale, so the busy hours stand
//! out whatever the volume. Inline SVG, readable with no script; each cell
//! says its host, time and count on hover (an SVG `<title>`).
//!
//! The time axis spans the middle 99 % of the events: one forged or
//! misconverted timestamp (1970, 2106) must not squeeze a week of incident
//! into one pixel. What falls outside is counted in the caption.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo, clippy::unimplemented, clippy::unreachable)]

use super::esc;
use crate::util::time::{Hourly, Timestamp};
use std::fmt::Write;

/// Pixels: host labels, the plot, one row.
const LABEL: f64 = 190.0;
const PLOT: f64 = 900.0;
const ROW: f64 = 14.0;
/// Cells drawn at most: buckets grow (hours, then days, …) to stay under.
const MAX_CELLS: usize = 60_000;
const MAX_COLUMNS: i64 = 1_500;

/// The chart for `hosts` (name, events per hour), or None with no events.
pub fn svg(hosts: &[(String, Hourly)]) -> Option<String> {
    let mut total = Hourly::default();
    hosts.iter().for_each(|(_, h)| total.merge(&h.clone()));
    let count = total.total();
    if count == 0 {
        return None;
    }
    let (lo, hi) = window(&total, count);
    let span = hi - lo + 1;
    // Hours per bucket: 1, or whole days when the window is long, coarser
    // until the columns and cells fit.
    let mut bucket = if span > 24 * 21 { 24 } else { 1 };
    let cells = |b: i64| {
        hosts
            .iter()
            .map(|(_, h)| h.0.range(lo..=hi).map(|(&t, _)| (t - lo) / b).collect::<std::collections::BTreeSet<_>>().len())
            .sum::<usize>()
    };
    while span / bucket > MAX_COLUMNS || cells(bucket) > MAX_CELLS {
        bucket *= 2;
    }
    // Whole days start at midnight UTC.
    let lo = if bucket >= 24 { lo.div_euclid(24) * 24 } else { lo };
    let span = hi - lo + 1;
    let columns = (span + bucket - 1) / bucket;
    let width = PLOT / columns as f64;
    let mut rows: Vec<(&str, Vec<u64>)> = Vec::new();
    let bin = |h: &Hourly| {
        let mut v = vec![0u64; columns as usize];
        for (&t, &n) in h.0.range(lo..=hi) {
            v[((t - lo) / bucket) as usize] += n;
        }
        v
    };
    let mut sorted: Vec<&(String, Hourly)> = hosts.iter().collect();
    sorted.sort_by_key(|(name, h)| (std::cmp::Reverse(h.total()), name.clone()));
    if hosts.len() > 1 {
        rows.push(("all hosts", bin(&total)));
    }
    rows.extend(sorted.iter().map(|(name, h)| (name.as_str(), bin(h))));
    let peak = rows.iter().flat_map(|(_, v)| v.iter().copied()).max().unwrap_or(1).max(1);
    let unit = if bucket == 1 {
        "hour".to_string()
    } else if bucket % 24 == 0 {
        format!("{} day(s)", bucket / 24)
    } else {
        format!("{bucket} hours")
    };
    let height = ROW * rows.len() as f64 + 40.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\" \
         role=\"img\" aria-label=\"events per {unit}, per host\" font-family=\"system-ui,sans-serif\" font-size=\"11\">",
        w = LABEL + PLOT + 10.0
    );
    for (i, (name, v)) in rows.iter().enumerate() {
        let y = ROW * i as f64;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\"{}>{}</text><rect x=\"{LABEL}\" y=\"{y}\" width=\"{PLOT}\" height=\"{}\" fill=\"#f6f6f6\"/>",
            LABEL - 6.0,
            y + ROW - 3.0,
            if i == 0 && hosts.len() > 1 { " font-weight=\"bold\"" } else { "" },
            esc(name),
            ROW - 1.0
        );
        for (c, &n) in v.iter().enumerate().filter(|(_, n)| **n > 0) {
            let at = lo + c as i64 * bucket;
            let _ = write!(
                s,
                "<rect x=\"{:.2}\" y=\"{y}\" width=\"{:.2}\" height=\"{}\" fill=\"{}\"><title>{} · {} ({unit}, UTC): {n} events</title></rect>",
                LABEL + width * c as f64,
                width.max(0.6),
                ROW - 1.0,
                colour(n, peak),
                esc(name),
                label(at, bucket)
            );
        }
    }
    // The axis: about eight times, at bucket boundaries.
    let y = ROW * rows.len() as f64;
    let ticks = 8.min(columns);
    for k in 0..=ticks {
        let c = columns * k / ticks.max(1);
        let x = LABEL + width * c as f64;
        let _ = write!(
            s,
            "<line x1=\"{x:.2}\" y1=\"0\" x2=\"{x:.2}\" y2=\"{}\" stroke=\"#bbb\" stroke-width=\"0.5\"/><text x=\"{x:.2}\" y=\"{}\" text-anchor=\"{}\">{}</text>",
            y + 4.0,
            y + 16.0,
            if k == ticks { "end" } else { "middle" },
            label(lo + c * bucket, bucket)
        );
    }
    let _ =
        write!(s, "<text x=\"{LABEL}\" y=\"{}\">UTC · one column = one {unit} · darker = more events (log scale)</text></svg>", y + 32.0);
    let outside = count - total.0.range(lo..=hi).map(|(_, n)| n).sum::<u64>();
    let busiest = busiest(&rows, lo, bucket, &unit);
    let mut caption = format!("<p>{count} events from converted logs and the last-change times of the text logs");
    if outside > 0 {
        let _ = write!(caption, "; {outside} outside the window drawn (the first and last half percent), listed in the logs' JSON lines");
    }
    caption.push_str(".</p>");
    Some(format!("{s}{caption}{busiest}"))
}

/// The hours holding the middle 99 % of the events.
fn window(total: &Hourly, count: u64) -> (i64, i64) {
    let cut = count / 200;
    let (mut seen, mut lo, mut hi) = (0u64, None, None);
    for (&t, &n) in &total.0 {
        seen += n;
        if lo.is_none() && seen > cut {
            lo = Some(t);
        }
        if hi.is_none() && seen >= count - cut {
            hi = Some(t);
        }
    }
    let lo = lo.unwrap_or(0);
    (lo, hi.unwrap_or(lo).max(lo))
}

/// White through orange to dark red, by log(n) / log(peak).
fn colour(n: u64, peak: u64) -> String {
    let f = ((n as f64).ln_1p() / (peak as f64).ln_1p()).clamp(0.0, 1.0);
    let (r, g, b) = (255.0 - 105.0 * f, 230.0 - 210.0 * f, 150.0 - 130.0 * f);
    format!("rgb({},{},{})", r as u8, g as u8, b as u8)
}

/// `2024-05-01 12:00`, or `2024-05-01` for buckets of whole days.
fn label(hour: i64, bucket: i64) -> String {
    let iso = Timestamp::new(hour * 3600, 0).iso8601();
    let n = if bucket >= 24 { 10 } else { 16 };
    iso.get(..n).unwrap_or(&iso).replace('T', " ")
}

/// The five busiest cells of the hosts' rows, as a list a reader can act on.
fn busiest(rows: &[(&str, Vec<u64>)], lo: i64, bucket: i64, unit: &str) -> String {
    let skip = usize::from(rows.len() > 1 && rows.first().is_some_and(|(n, _)| *n == "all hosts"));
    let mut cells: Vec<(u64, &str, i64)> = rows
        .iter()
        .skip(skip)
        .flat_map(|(name, v)| v.iter().enumerate().map(move |(c, &n)| (n, *name, lo + c as i64 * bucket)))
        .filter(|c| c.0 > 0)
        .collect();
    cells.sort_by_key(|&(n, name, at)| (std::cmp::Reverse(n), name, at));
    let zone = if bucket >= 24 { "" } else { " UTC" };
    let mut s = format!("<p>Busiest (one {unit} each): ");
    let items: Vec<String> =
        cells.iter().take(5).map(|(n, name, at)| format!("<b>{}</b> {}{zone}: {n}", esc(name), label(*at, bucket))).collect();
    s.push_str(&items.join("; "));
    s.push_str("</p>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hourly(events: &[(i64, u64)]) -> Hourly {
        let mut h = Hourly::default();
        for &(hour, n) in events {
            for _ in 0..n {
                h.see(hour * 3600 + 59);
            }
        }
        h
    }

    #[test]
    fn rows_are_sorted_by_activity_under_the_case_total() {
        let base = 476_000; // 2024-04-20
        let a = hourly(&[(base, 3), (base + 5, 40)]);
        let b = hourly(&[(base + 1, 400), (base + 2, 1)]);
        let svg = svg(&[("quiet01".into(), a), ("busy01".into(), b)]).unwrap();
        let (all, busy, quiet) = (svg.find(">all hosts<").unwrap(), svg.find(">busy01<").unwrap(), svg.find(">quiet01<").unwrap());
        assert!(all < busy && busy < quiet, "{svg}");
        assert!(svg.contains("busy01 · 2024-04-20 09:00 (hour, UTC): 400 events"), "{svg}");
        assert!(svg.contains("Busiest (one hour each): <b>busy01</b> 2024-04-20 09:00 UTC: 400"), "{svg}");
        assert!(svg.starts_with("<svg") && svg.contains("width=\"1100\""));
    }

    #[test]
    fn a_stray_timestamp_does_not_stretch_the_axis() {
        let mut events: Vec<(i64, u64)> = (0..48).map(|i| (476_000 + i, 10)).collect();
        events.push((0, 1)); // 1970
        let svg = svg(&[("web01".into(), hourly(&events))]).unwrap();
        assert!(svg.contains("one column = one hour"), "{svg}");
        assert!(svg.contains("1 outside the window drawn"), "{svg}");
        assert!(!svg.contains("1970-01-01"), "{svg}");
        assert!(super::svg(&[("empty".into(), Hourly::default())]).is_none());
    }

    #[test]
    fn long_spans_are_drawn_per_day_and_bounded() {
        // A year of hourly events on 100 hosts.
        let hosts: Vec<(String, Hourly)> = (0..100)
            .map(|k| (format!("host{k:03}"), hourly(&(0..8760).step_by(7).map(|i| (470_000 + i, 1 + k as u64 % 3)).collect::<Vec<_>>())))
            .collect();
        let svg = svg(&hosts).unwrap();
        assert!(svg.contains("day(s)"), "{}", &svg[..300]);
        assert!(svg.matches("<rect").count() <= MAX_CELLS + 101 + 1);
        assert!(svg.len() < 16 << 20);
    }
}
