"""The README cannot rot: it is built from tested snippets and the settings themselves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from embedgate.config import reference

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_is_built_from_current_snippets_and_settings() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "build_readme.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_readme_lists_every_setting() -> None:
    missing = [name for name, _, _ in reference() if f"`{name}`" not in README]
    assert missing == []


def test_readme_shows_the_two_quickstart_commands() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert "make demo" in quickstart
    assert "make test" in quickstart


def test_one_line_sections_show_their_lines_then_a_marked_host_app() -> None:
    """A "one line" section opens with that line alone; in the complete app below it, every
    embedgate line is marked, so the rest reads as host-app code."""
    for title, snippet in [
        ("Flask: one line", "flask_app.py"),
        ("FastAPI / Starlette: two lines", "fastapi_app.py"),
    ]:
        section = README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
        headline = section.split("```python\n", 1)[1].split("```", 1)[0].strip().splitlines()
        assert len(headline) == (1 if "one line" in title else 2)
        code = (ROOT / "docs" / "snippets" / snippet).read_text(encoding="utf-8")
        for line in headline:
            (found,) = [c for c in code.splitlines() if c.startswith(line)]
            assert "# embedgate" in found
        for line in code.splitlines():
            if "embedgate" in line.split("#", 1)[0] and not line.startswith("#"):
                assert "# embedgate" in line, line
