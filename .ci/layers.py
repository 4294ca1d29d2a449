#!/usr/bin/env python3
"""Fails when a layer imports a layer above it (docs/ARCHITECTURE.md, "Data
flows one way"): every `crate::<layer>` path in src/<layer>/ (or
src/<layer>.rs) must name the same layer or one below it. `util` is shared
by all; `main.rs` and `lib.rs` sit above everything."""
import pathlib, re, sys

# Bottom to top; a layer may use its own and any earlier entry.
ORDER = ["util", "evidence", "volume", "fs", "host", "targets", "convert", "collect", "inspect", "timeline", "report", "fleet"]
rank = {name: i for i, name in enumerate(ORDER)}
src = pathlib.Path(__file__).resolve().parent.parent / "src"
bad = []
for path in sorted(src.rglob("*.rs")):
    rel = path.relative_to(src)
    layer = rel.parts[0].removesuffix(".rs")
    if layer in ("main", "lib"):
        continue
    if layer not in rank:
        bad.append(f"{rel}: not in a known layer (add it to .ci/layers.py and docs/ARCHITECTURE.md)")
        continue
    text = path.read_text()
    # `crate::x`, and the names inside `use crate::{x, y::z}`.
    used = set(re.findall(r"\bcrate::([a-z_]+)", text))
    for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
        used.update(re.findall(r"(?:^|,)\s*([a-z_]+)", group))
    for other in sorted(used):
        if other in rank and rank[other] > rank[layer]:
            bad.append(f"{rel}: the {layer} layer uses crate::{other}, a layer above it")
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
