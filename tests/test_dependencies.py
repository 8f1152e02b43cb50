"""The core runs on its declared dependencies alone (PyJWT, cachetools, anyio): every
framework, HTTP client and Redis client stays an optional extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

OPTIONAL = [
    "httpx",
    "redis",
    "starlette",
    "werkzeug",
    "flask",
    "django",
    "jinja2",
    "sniffio",
    "fastapi",
    "uvicorn",
    "authlib",
    "markupsafe",
    "trio",
]


def run_without_optional(code: str) -> subprocess.CompletedProcess[str]:
    blocker = textwrap.dedent(f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {OPTIONAL!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)")
                return None
        sys.meta_path.insert(0, Block())
    """)
    return subprocess.run(
        [sys.executable, "-c", blocker + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_core_shells_and_local_providers_import_and_sign_without_extras() -> None:
    result = run_without_optional("""
        import embedgate, embedgate.asgi, embedgate.wsgi, embedgate.web.templating
        from embedgate import Engine, Principal
        from embedgate.providers import get_profile
        engine = Engine.from_settings(secret="dep-Qm7vX2kL9pR4tZ8wB1nC6yD3fG5hJ0s", environ={})
        token = engine.service.get_token(Principal(subject="alice"), "s" * 40)
        assert token.subject == "alice"
        for name in ("metabase", "tableau", "looker"):
            get_profile(name)
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_a_missing_extra_is_a_configuration_error_naming_it() -> None:
    result = run_without_optional("""
        from embedgate import ConfigurationError
        from embedgate.providers import get_profile
        for name, extra in (("toucan", "embedgate[http]"), ("superset", "embedgate[http]")):
            try:
                get_profile(name)
            except ConfigurationError as exc:
                assert extra in str(exc), exc
            else:
                raise AssertionError(name)
        try:
            import embedgate.redis_cache
        except ConfigurationError as exc:
            assert "embedgate[redis]" in str(exc), exc
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
