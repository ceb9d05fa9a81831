"""A seeded fuzzing run of the picture conversion: mutants of real and crafted pictures of every
accepted format (tests/picture_fuzzing.py) through `to_model_image(open_picture(...))`, each
in a child process held to a memory budget and a deadline. Prints what it tried (inputs per
format and how each ended, seconds, the slowest input, the largest memory peak, failures) as
a table and as JSON; exits 1 if any input ended otherwise than as the (28, 28) image or the
project's one-paragraph picture error, within the bounds.

    python benchmarks/fuzz_pictures.py --seed 1 --seconds 300 --output benchmarks/fuzz-pictures.json

Run from the project root. Each failing input is written to --failures (default
fuzz-failures/, git-ignored) as seed-S-index-I.bin; `mutant(S, I)` of tests/picture_fuzzing.py
makes it again. CI runs a short fixed-seed run (tests/served_model/test_fuzz_pictures.py)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))  # tests/picture_fuzzing.py, beside the installed package

from tests.picture_fuzzing import MEMORY_MB, SECONDS, BoundedConverter, fuzz  # noqa: E402


def table(report: dict) -> str:
    kinds = sorted({kind for counts in report["by_format"].values() for kind in counts})
    rows = [["format", "inputs", *kinds]]
    for fmt, counts in report["by_format"].items():
        rows.append([fmt, str(sum(counts.values())), *(str(counts.get(k, 0)) for k in kinds)])
    rows.append(["all", str(report["inputs"]), *(
        str(sum(c.get(k, 0) for c in report["by_format"].values())) for k in kinds
    )])  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(lines)


def _machine() -> str:
    cpu = platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=180, help="how long to run")
    parser.add_argument("--inputs", type=int, help="stop after this many inputs instead")
    parser.add_argument("--memory-mb", type=int, default=MEMORY_MB, help="budget per input")
    parser.add_argument("--deadline", type=float, default=SECONDS, help="seconds per input")
    parser.add_argument("--failures", type=Path, default=PROJECT / "fuzz-failures")
    parser.add_argument("--output", type=Path, help="also write the report here as JSON")
    args = parser.parse_args()

    with BoundedConverter(args.memory_mb, args.deadline) as converter:
        report = fuzz(
            args.seed,
            converter,
            inputs=args.inputs,
            seconds=None if args.inputs else args.seconds,
            failures_folder=args.failures,
        ).as_dict()
    report |= {
        "memory_budget_mb": args.memory_mb,
        "deadline_seconds": args.deadline,
        "machine": _machine(),
    }
    print(table(report))
    print(
        f"{report['inputs']} inputs in {report['seconds']} s (seed {args.seed}); slowest "
        f"{report['slowest_seconds']} s, largest memory peak {report['largest_peak_mb']} MB "
        f"(budget {args.memory_mb} MB, {args.deadline:g} s); {len(report['failures'])} failures"
    )
    print(json.dumps(report, indent=2))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
