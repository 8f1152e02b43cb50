"""Run the benchmark sections and print one table: ``python -m bench [section ...]``.

Adding a section is one line in :data:`SECTIONS`: a module exposing ``run() -> list[Row]``
(see :mod:`bench.table`). The benchmark measures; it always exits 0.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time
from collections.abc import Sequence

from bench.table import Row, render

SECTIONS: list[str] = [
    "bench.core",
    "bench.providers",
    "bench.outage",
    "bench.redis",
    "bench.telemetry",
    "bench.web",
    "bench.workers",
]


def main(argv: Sequence[str] | None = None) -> int:
    wanted = list(sys.argv[1:] if argv is None else argv)
    rows: list[Row] = []
    started = time.perf_counter()
    for module_name in SECTIONS:
        short = module_name.rpartition(".")[2]
        if wanted and short not in wanted and module_name not in wanted:
            continue
        try:
            section = importlib.import_module(module_name)
        except ImportError as exc:  # an optional extra is missing: say so, go on
            print(f"bench: skipped {module_name}: {exc}", file=sys.stderr)
            continue
        print(f"bench: running {module_name} ...", file=sys.stderr, flush=True)
        rows.extend(section.run())
    print(
        f"embedgate benchmark — Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.machine()}, "
        f"{time.perf_counter() - started:.1f} s"
    )
    print(render(rows))
    failed = [row for row in rows if row.status == "FAIL"]
    if failed:
        print(f"\n{len(failed)} target(s) missed (a measurement: the exit status stays 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
