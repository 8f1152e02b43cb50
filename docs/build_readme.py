"""Build README.md from docs/README.tpl.md: the snippets under docs/snippets/ (which tests
run) and the configuration reference (from embedgate.config) are pasted in, so neither can
drift from the code. ``python docs/build_readme.py`` writes README.md; ``--check`` exits 1
if README.md is out of date."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from embedgate.config import reference

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "docs" / "README.tpl.md"
README = ROOT / "README.md"


def config_table() -> str:
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for name, default, doc in reference():
        shown = f"`{default}`" if default else ""
        rows.append(f"| `{name}` | {shown} | {doc.replace('|', '/')} |")
    return "\n".join(rows)


def snippet(match: re.Match[str]) -> str:
    path = match.group(1)
    body = (ROOT / path).read_text(encoding="utf-8").rstrip("\n")
    language = "python" if path.endswith(".py") else "html+jinja"
    return f"```{language}\n{body}\n```"


def build() -> str:
    text = TEMPLATE.read_text(encoding="utf-8")
    text = re.sub(r"@@SNIPPET (\S+)@@", snippet, text)
    return text.replace("@@CONFIG@@", config_table())


def main(argv: list[str]) -> int:
    text = build()
    if "--check" in argv:
        if README.read_text(encoding="utf-8") != text:
            print("README.md is out of date: run python docs/build_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
