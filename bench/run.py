"""The hub's benchmark suite: figures and ratios, not tests.

    python bench/run.py                 # full sizes (10-30 minutes on 2 cores)
    python bench/run.py --quick         # smaller sizes, every figure, under 5 minutes
    python bench/run.py --smoke         # tiny sizes, no peers: checks the harness works
    python bench/run.py --only ingest budget --json out.json --markdown out.md

Benchmarks (``--only`` names): ingest, workspace, budget, noop, health, push, demo, serve,
web; ``webhooks`` and ``scale`` only when named (``--companies 5000,20000,100000`` sets the
scale sizes). Each prints a table; the end has a goals table (the targets from the issues, met
or missed) and the machine the figures were measured on. Peers (dlt, Singer taps, official
SDKs) run where installed
(``pip install -e '.[bench]'``; the Singer taps get throwaway venvs); ``--no-peers`` skips them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))  # noqa: E402 - the bench modules import each other flatly
sys.path.insert(1, str(BENCH.parent))

from common import Options, Section, fmt, machine_info  # noqa: E402

BENCHMARKS = [
    "ingest",
    "taps",
    "workspace",
    "budget",
    "noop",
    "health",
    "push",
    "demo",
    "serve",
    "web",
]
OPT_IN = ["webhooks", "scale"]  # minutes of real processes: only with --only
SMOKE = ["ingest", "noop", "budget", "health", "push", "demo", "serve"]


def _load(name: str):
    module = __import__(f"bench_{name}" if name != "health" else "health_adapter")
    return module.run


def run_benchmark(name: str, opts: Options) -> Section:
    started = time.perf_counter()
    try:
        section = _load(name)(opts)
    except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
        section = Section(name, name, status="error")
        section.notes.append(f"error: {type(exc).__name__}: {exc}")
        section.notes.append(traceback.format_exc(limit=6).replace("\n", " ⏎ ")[-1500:])
    section.seconds = time.perf_counter() - started
    return section


def render_markdown(sections: list[Section], info: dict, mode: str, total_s: float) -> str:
    out = [f"# hub benchmarks ({mode})", ""]
    pkgs = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    out.append(
        f"Machine: {info['cpu_count']} CPUs ({info['cpu']}), {info['memory']}, "
        f"Python {info['python']} ({info['implementation']}), {info['platform']}. "
        f"Commit {info['commit'] or '?'}, {info['date']}. Total {total_s:.0f} s."
    )
    out += ["", f"Packages: {pkgs}.", ""]
    for section in sections:
        out.append(f"## {section.title}")
        out.append("")
        if section.rows:
            cols = section.columns
            out.append("| " + " | ".join(cols) + " |")
            out.append("|" + "|".join("---" for _ in cols) + "|")
            for row in section.rows:
                out.append("| " + " | ".join(fmt(row.get(c)) for c in cols) + " |")
            out.append("")
        for note in section.notes:
            out.append(f"- {note}")
        out.append(f"- ({section.status}, {section.seconds:.1f} s)")
        out.append("")
    goals = [(s, g) for s in sections for g in s.goals]
    out.append("## Goals")
    out.append("")
    out.append("| benchmark | goal | value | target | met |")
    out.append("|---|---|---|---|---|")
    for section, goal in goals:
        met = {True: "yes", False: "**MISSED**", None: "–"}[goal.met]
        value = f"{fmt(goal.value)} {goal.unit}".strip()
        target = f"{goal.op} {fmt(goal.target)} {goal.unit}".strip()
        name = goal.name + (f" ({goal.note})" if goal.note else "")
        out.append(f"| {section.name} | {name} | {value} | {target} | {met} |")
    unavailable = [s.name for s in sections if s.status != "ok"]
    if unavailable:
        out.append("")
        out.append("Not measured or failed: " + ", ".join(unavailable) + " (see their notes).")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="hub benchmark suite (figures, not tests)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes, under 5 minutes")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, no peers (seconds)")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS + OPT_IN, help="run only these")
    parser.add_argument("--json", dest="json_out", help="write the results as JSON here")
    parser.add_argument("--markdown", dest="md_out", help="write the results as markdown here")
    parser.add_argument("--no-peers", action="store_true", help="skip dlt, Singer taps, SDKs")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--companies", help="scale benchmark sizes, e.g. 5000,20000,100000 (default by mode)"
    )
    parser.add_argument("--workdir", default="/tmp/hub-bench", help="scratch space (and tap venvs)")
    args = parser.parse_args(argv)

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    opts = Options(
        mode=mode,
        seed=args.seed,
        workdir=Path(args.workdir),
        peers=not (args.no_peers or args.smoke),
    )
    opts.workdir.mkdir(parents=True, exist_ok=True)
    if args.companies:
        os.environ["HUB_BENCH_SCALE_COMPANIES"] = args.companies
    names = args.only or (SMOKE if args.smoke else BENCHMARKS)
    info = machine_info()
    started = time.perf_counter()
    sections = []
    for name in names:
        print(f"[bench] {name} …", file=sys.stderr, flush=True)
        section = run_benchmark(name, opts)
        print(
            f"[bench] {name}: {section.status} in {section.seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        sections.append(section)
    total = time.perf_counter() - started
    markdown = render_markdown(sections, info, mode, total)
    print(markdown)
    if args.md_out:
        Path(args.md_out).write_text(markdown)
    if args.json_out:
        payload = {
            "mode": mode,
            "seconds": round(total, 1),
            "machine": info,
            "sections": [s.as_dict() for s in sections],
        }
        Path(args.json_out).write_text(json.dumps(payload, indent=2, default=str))
    failed = [s for s in sections if s.status == "error"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
