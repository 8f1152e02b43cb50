"""The profile API across providers: registry, per-engine copies, snippets that escape
everything and point the browser script at the token-bearing attribute."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import pytest

from embedgate import Config, ConfigurationError, EmbedToken, Engine, Issuer, LocalSigner
from embedgate.keys import KeySet, SigningKey
from embedgate.providers import ProfileBase, base, get_profile, profile_names, register_profile
from tests.conftest import TEST_SECRET
from tests.providers.test_toucan import elements

HOSTILE = "tok\"en'<script>&amp;</script>"

SETTINGS: dict[str, dict[str, str]] = {
    "generic": {
        "EMBEDGATE_SECRET": TEST_SECRET,
        "EMBEDGATE_PROVIDER_URL": "https://cube.example.com",
    },
    "toucan": {
        "EMBEDGATE_API_KEY": "k" * 40,
        "EMBEDGATE_PROVIDER_URL": "https://toucan.example.com",
    },
    "superset": {
        "EMBEDGATE_PROVIDER_URL": "https://superset.example.com",
        "EMBEDGATE_SUPERSET_MODE": "local",
        "EMBEDGATE_SECRET": TEST_SECRET,
    },
    "metabase": {
        "EMBEDGATE_PROVIDER_URL": "https://metabase.example.com",
        "EMBEDGATE_SECRET": TEST_SECRET,
    },
    "tableau": {
        "EMBEDGATE_PROVIDER_URL": "https://tableau.example.com",
        "EMBEDGATE_SECRET": TEST_SECRET,
        "EMBEDGATE_TABLEAU_CLIENT_ID": "client",
        "EMBEDGATE_TABLEAU_SECRET_ID": "secret-id",
    },
    "looker": {
        "EMBEDGATE_PROVIDER_URL": "https://looker.example.com",
        "EMBEDGATE_SECRET": TEST_SECRET,
        "EMBEDGATE_LOOKER_MODELS": "thelook",
    },
}
SNIPPET_OPTIONS: dict[tuple[str, str], dict[str, str]] = {
    ("generic", "iframe"): {"url": "https://cube.example.com/embed/{resource}#token={token}"},
    ("generic", "element"): {"tag": "cube-dashboard", "attribute": "auth"},
}


def engine(provider: str) -> Engine:
    mapping: Mapping[str, Any] = {"EMBEDGATE_PROVIDER": provider, **SETTINGS[provider]}
    return Engine(Config.load(mapping, environ={}), config_source=mapping, environ={})


def test_every_documented_provider_is_registered() -> None:
    assert profile_names() == [
        "generic",
        "looker",
        "metabase",
        "powerbi",
        "preset",
        "quicksight",
        "sigma",
        "superset",
        "tableau",
        "thoughtspot",
        "toucan",
    ]
    with pytest.raises(ConfigurationError) as caught:
        get_profile("domo")
    assert caught.value.setting == "EMBEDGATE_PROVIDER"


def test_one_session_token_serves_every_embed_unless_the_token_names_its_resource() -> None:
    # Superset without EMBEDGATE_SUPERSET_DASHBOARDS: one guest token per dashboard.
    bound = {"metabase": "dashboard:42", "looker": "dashboard:42", "superset": "42"}
    for provider in sorted(SETTINGS):
        profile = engine(provider).profile
        kind = profile.snippet_kinds[0]
        assert profile.resource_for(kind, "42") == bound.get(provider), provider


def test_each_engine_configures_its_own_copy_of_a_profile() -> None:
    first = engine("metabase")
    mapping = {
        **SETTINGS["metabase"],
        "EMBEDGATE_PROVIDER": "metabase",
        "EMBEDGATE_PROVIDER_URL": "https://other.example.com",
    }
    second = Engine(Config.load(mapping, environ={}), config_source=mapping, environ={})
    token = EmbedToken(token="t", expires_at=2e9, issued_at=1e9, subject="s")
    assert "metabase.example.com" in first.profile.snippet("dashboard", "1", token, {})
    assert "other.example.com" in second.profile.snippet("dashboard", "1", token, {})
    assert first.profile is not second.profile is not get_profile("metabase")


CASES = [
    (provider, kind)
    for provider in sorted(SETTINGS)
    for kind in engine(provider).profile.snippet_kinds
]


@pytest.mark.parametrize(("provider", "kind"), CASES, ids=[f"{p}-{k}" for p, k in CASES])
def test_snippets_escape_and_mark_the_token_attribute(provider: str, kind: str) -> None:
    profile = engine(provider).profile
    resource = (
        "Sales/Overview"
        if provider == "tableau"
        else "thelook/orders"
        if kind == "explore"
        else "42"
    )
    token = EmbedToken(token=HOSTILE, expires_at=2e9, issued_at=1e9, subject="s", url=HOSTILE)
    options = {**SNIPPET_OPTIONS.get((provider, kind), {}), "title": 'Q3 <"sales">', "nonce": "n-1"}
    markup = profile.snippet(kind, resource, token, options)
    assert "<script>&amp;" not in markup
    assert "'<script>" not in markup
    assert markup.isascii()
    found = elements(markup)
    assert {tag for tag, _ in found} <= {
        "script",
        "iframe",
        "div",
        "tc-dashboard",
        "tc-ai-assistant",
        "tableau-viz",
        "cube-dashboard",
    }
    bearers = [attrs for _, attrs in found if "data-embedgate-token" in attrs]
    if provider == "superset":  # the SDK pulls the token through embedgate.getToken()
        assert bearers == []
        assert HOSTILE not in markup
        return
    if provider == "looker":  # a one-time URL opening a session that outlives it
        assert bearers == []
        assert [attrs["src"] for tag, attrs in found if tag == "iframe"] == [HOSTILE]
        return
    [bearer] = bearers
    name = bearer["data-embedgate-token"]
    assert name is not None
    template = bearer.get("data-embedgate-url-template")
    if name in ("src", "href"):  # embedgate.js never puts a bare token in a URL attribute
        assert template is not None
        assert "{token}" in template
    expected = HOSTILE if template is None else template.replace("{token}", quote(HOSTILE, safe=""))
    assert bearer[name] == expected
    assert bearer["title"] == 'Q3 <"sales">'  # round-trips through escaping
    assert all(attrs.get("nonce") == "n-1" for tag, attrs in found if tag == "script")


def test_generic_snippets_refuse_unsafe_templates_and_names() -> None:
    profile = engine("generic").profile
    token = EmbedToken(token="t", expires_at=2e9, issued_at=1e9, subject="s")
    for options in (
        {"url": "javascript:alert('{token}')"},
        {"url": "//evil.example/{token}"},
        {"url": "https://x/"},
    ):
        with pytest.raises(ConfigurationError):
            profile.snippet("iframe", None, token, options)
    for options in (
        {"tag": "div"},
        {"tag": "x-embed", "attribute": "onload"},
        {"tag": "x-embed", "attribute": "id"},
    ):
        with pytest.raises(ConfigurationError):
            profile.snippet("element", None, token, options)
    markup = profile.snippet("iframe", "a b", token, {"url": "/d/{resource}#t={token}"})
    assert 'src="/d/a%20b#t=t"' in markup
    assert 'data-embedgate-url-template="/d/a%20b#t={token}"' in markup
    assert profile.snippet("iframe", None, token, {"url": "/embed#t={token}"}).startswith(
        '<iframe src="/embed#t=t"'
    )


def test_unknown_generic_settings_are_still_refused() -> None:
    mapping = {
        "EMBEDGATE_PROVIDER": "generic",
        "EMBEDGATE_SECRET": TEST_SECRET,
        "EMBEDGATE_GENERIC_URL": "x",
    }
    with pytest.raises(ConfigurationError) as caught:
        Engine(Config.load(mapping, environ={}), config_source=mapping, environ={})
    assert caught.value.setting == "EMBEDGATE_GENERIC_URL"


class HomeGrown(ProfileBase):
    """A custom provider, registered by the host application."""

    name = "homegrown"
    snippet_kinds = ("panel",)

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> Issuer:
        self.site = options.get("site", "")
        return LocalSigner(
            KeySet([SigningKey.hmac(TEST_SECRET)]),
            issuer="app",
            audience="homegrown",
            name=self.name,
        )

    def snippet(
        self, kind: str, resource: str | None, token: EmbedToken, options: Mapping[str, str]
    ) -> str:
        attrs = f'data-site="{self.site}" key="{token.token}" data-embedgate-token="key"'
        return f"<x-panel {attrs}></x-panel>"


def test_a_custom_profile_plugs_in_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_PROFILES", dict(base._PROFILES))  # leave the registry as it was
    register_profile(HomeGrown())
    # Config.load refuses unknown EMBEDGATE_* keys in a mapping, so the custom section's
    # settings come through config_source (or the environment).
    mapping = {
        "EMBEDGATE_PROVIDER": "homegrown",
        "EMBEDGATE_HOMEGROWN_SITE": "https://bi.example.com",
    }
    config = Config.load({"EMBEDGATE_PROVIDER": "homegrown"}, environ={})
    eng = Engine(config, config_source=mapping, environ={})
    token = eng.token_for({"sub": "ada"}, "s", eng.profile.resource_for("panel", "p1"))
    assert token is not None
    assert 'data-site="https://bi.example.com"' in eng.profile.snippet("panel", "p1", token, {})
    assert eng.profile.endpoint_payload(token, {"token": token.token}) == {"token": token.token}
    with pytest.raises(ConfigurationError):
        eng.profile.resource_for("chart", "p1")
