"""Run the benchmark sections: ``python -m bench [section ...]``.

Adding a section is one line in :data:`SECTIONS`: a module exposing ``run() -> list[Row]``
(see :mod:`bench.table`). Each section's table is printed as soon as it is done; a section
that fails prints its traceback and the others still run. The benchmark measures; it
always exits 0.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
import traceback
from collections.abc import Sequence

from bench.table import Row, render

SECTIONS: list[str] = [
    "bench.core",
    "bench.web",
    "bench.http",
    "bench.providers",
    "bench.outage",
    "bench.redis",
    "bench.scale",
    "bench.telemetry",
    "bench.workers",
]


def main(argv: Sequence[str] | None = None) -> int:
    wanted = list(sys.argv[1:] if argv is None else argv)
    rows: list[Row] = []
    broken: list[str] = []
    started = time.perf_counter()
    print(
        f"embedgate benchmark — Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.machine()}",
        flush=True,
    )
    for module_name in SECTIONS:
        short = module_name.rpartition(".")[2]
        if wanted and short not in wanted and module_name not in wanted:
            continue
        try:
            section = importlib.import_module(module_name)
        except ImportError as exc:  # an optional extra is missing: say so, go on
            print(f"bench: skipped {module_name}: {exc}", file=sys.stderr)
            continue
        print(f"\nbench: running {module_name} ...", file=sys.stderr, flush=True)
        # A section may come in parts (PARTS), each printed as soon as it is done.
        for part in getattr(section, "PARTS", None) or (section.run,):
            label = short if part is section.run else f"{short}.{part.__name__}"
            part_started = time.perf_counter()
            try:
                part_rows = part()
            except Exception:  # one failing part must not lose the others
                print(f"\n[{label}] FAILED:", flush=True)
                traceback.print_exc(file=sys.stdout)
                broken.append(label)
                continue
            print(f"\n[{label}] {time.perf_counter() - part_started:.1f} s")
            print(render(part_rows), flush=True)
            rows.extend(part_rows)
    print(f"\nall sections: {time.perf_counter() - started:.1f} s")
    failed = [row for row in rows if row.status == "FAIL"]
    passed = [row for row in rows if row.status == "PASS"]
    print(f"{len(passed)} target(s) met, {len(failed)} missed", end="")
    print(f", sections that failed: {', '.join(broken)}" if broken else "")
    for row in failed:
        print(f"  FAIL  {row.section}: {row.name} = {row.value:.3g} {row.unit} ({row.target})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
