//! Converts one systemd journal file to JSON lines on stdout (or into a
//! file), as `extract` does: `cargo run --release --example journal_json --
//! X.journal [OUT.jsonl]`. The benchmark (benches/journal_json.sh) times it
//! against journalctl; the conversion's summary goes to stderr.

use snapsift::convert::{Context, journal};
use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(input) = args.first() else {
        eprintln!("usage: journal_json X.journal [OUT.jsonl]");
        std::process::exit(2);
    };
    let ctx = Context { host: "bench", source_path: input };
    let sink: Box<dyn Write> = match args.get(1) {
        Some(out) => Box::new(std::fs::File::create(out)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let c = journal::convert(std::path::Path::new(input), &ctx, &mut out)?;
    out.flush()?;
    eprintln!("{} entries, {:?} .. {:?}, problem: {:?}", c.entries, c.first, c.last, c.problem);
    Ok(())
}
