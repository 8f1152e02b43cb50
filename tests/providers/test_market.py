"""Power BI, Preset, ThoughtSpot, Sigma and QuickSight against fake servers on loopback that
check each request the way the provider documents it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import jwt
import pytest

from embedgate import Config, ConfigurationError, Engine, IssuerError, Principal, PrincipalError
from embedgate.providers import get_profile, profile_names
from tests.providers.fakes.market import (
    FakePowerBi,
    FakePreset,
    FakeQuickSight,
    FakeSigma,
    FakeThoughtSpot,
)
from tests.providers.fakes.server import serve

SECRET = "k7Qm2vX9pL4sT8wZ1nB6cR3yH5jD0fGaeUoIiPqWxEr"
REPORT = "5b218778-e7a5-4d73-8187-f10824047715"
DATASET = "cfafbeb1-8037-4d0c-896e-a46fb27ff229"


def engine(mapping: Mapping[str, Any]) -> Engine:
    config = Config.load(mapping, environ={})
    return Engine(config, config_source=mapping, environ={})


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(markup: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(markup)
    return parser.found


def test_every_new_profile_is_selectable() -> None:
    for name in ("powerbi", "quicksight", "sigma", "preset", "thoughtspot"):
        assert name in profile_names()
        assert get_profile(name).name == name


# -- Power BI ---------------------------------------------------------------------------------


@pytest.fixture
def powerbi() -> Iterator[tuple[FakePowerBi, str]]:
    fake = FakePowerBi("contoso-tenant", "app-client-id", "aad-client-secret-value-123")
    with serve(fake.app) as url:
        yield fake, url


def powerbi_settings(url: str, **extra: str) -> dict[str, Any]:
    return {
        "EMBEDGATE_PROVIDER": "powerbi",
        "EMBEDGATE_PROVIDER_URL": url,
        "EMBEDGATE_POWERBI_AUTHORITY_URL": url,
        "EMBEDGATE_POWERBI_TENANT_ID": "contoso-tenant",
        "EMBEDGATE_POWERBI_CLIENT_ID": "app-client-id",
        "EMBEDGATE_POWERBI_CLIENT_SECRET": "aad-client-secret-value-123",
        "EMBEDGATE_POWERBI_REPORTS": REPORT,
        "EMBEDGATE_POWERBI_DATASETS": DATASET,
        "EMBEDGATE_POWERBI_RLS_DATASETS": DATASET,
        "EMBEDGATE_POWERBI_ROLES": '{"analyst": "RegionReader"}',
        "EMBEDGATE_POWERBI_RETRIES": "0",
        **extra,
    }


def test_powerbi_gets_an_aad_token_then_an_embed_token_with_the_identity(
    powerbi: tuple[FakePowerBi, str], principal: Principal
) -> None:
    fake, url = powerbi
    eng = engine(powerbi_settings(url))
    token = eng.service.get_token(principal, "s1")
    assert token.token.startswith("H4sI-embed-")
    assert token.jti is not None
    assert token.expires_at > time.time() + 60
    aad, generate = fake.seen
    assert aad["path"] == "/contoso-tenant/oauth2/v2.0/token"
    assert aad["body"]["grant_type"] == "client_credentials"
    assert aad["body"]["scope"] == "https://analysis.windows.net/powerbi/api/.default"
    assert generate["headers"]["authorization"] == f"Bearer {fake.issued_access[0]}"
    body = generate["body"]
    assert body["reports"] == [{"id": REPORT}]
    assert body["datasets"] == [{"id": DATASET}]
    assert body["identities"] == [
        {"username": "ada", "roles": ["RegionReader"], "datasets": [DATASET]}
    ]
    # The secret only ever goes to Azure AD, never to Power BI or the page.
    assert "aad-client-secret-value-123" not in repr(generate) + repr(eng) + repr(token)
    markup = eng.profile.snippet("report", REPORT, token, {})
    assert token.token not in markup
    assert "aad-client-secret" not in markup
    [(_, _), (tag, attrs)] = elements(markup)
    assert tag == "div"
    assert attrs["data-embedgate-sdk"] == "powerbi"
    assert (
        attrs["data-embedgate-embed-url"]
        == f"https://app.powerbi.com/reportEmbed?reportId={REPORT}"
    )


def test_powerbi_reuses_the_aad_token_and_renews_it_when_refused(
    powerbi: tuple[FakePowerBi, str], principal: Principal
) -> None:
    fake, url = powerbi
    eng = engine(powerbi_settings(url))
    eng.service.get_token(principal, "s1")
    eng.service.get_token(principal, "s2")
    assert len(fake.calls("oauth2")) == 1
    assert len(fake.calls("GenerateToken")) == 2
    fake.revoked.add(fake.issued_access[0])
    eng.service.get_token(principal, "s3")
    assert len(fake.calls("oauth2")) == 2


def test_powerbi_async_face_and_a_failing_generate(
    powerbi: tuple[FakePowerBi, str], principal: Principal
) -> None:
    fake, url = powerbi
    eng = engine(powerbi_settings(url))

    async def main() -> str:
        return (await eng.service.aget_token(principal, "s1")).token

    assert anyio.run(main).startswith("H4sI")
    fake.fail.append(503)
    with pytest.raises(IssuerError) as caught:
        eng.service.get_token(principal, "other-session-after-failure")
    assert caught.value.code == "provider_unavailable"


def test_powerbi_email_username_and_bad_settings(
    powerbi: tuple[FakePowerBi, str], principal: Principal
) -> None:
    fake, url = powerbi
    eng = engine(powerbi_settings(url, EMBEDGATE_POWERBI_USERNAME="email"))
    eng.service.get_token(principal, "s1")
    assert fake.calls("GenerateToken")[0]["body"]["identities"][0]["username"] == "ada@example.com"
    with pytest.raises(PrincipalError):
        eng.service.get_token(Principal(subject="no-mail", roles=("analyst",)), "s2")
    with pytest.raises(ConfigurationError, match="EMBEDGATE_POWERBI_RLS_DATASETS"):
        engine(powerbi_settings(url, EMBEDGATE_POWERBI_RLS_DATASETS="ffff-1111"))
    with pytest.raises(ConfigurationError, match="EMBEDGATE_POWERBI_TENANT_ID"):
        engine({k: v for k, v in powerbi_settings(url).items() if "TENANT" not in k})
    with pytest.raises(ConfigurationError, match="EMBEDGATE_POWERBI_REPORTS"):
        engine(powerbi_settings(url, EMBEDGATE_POWERBI_REPORTS="../../etc"))


def test_powerbi_wrong_client_secret_is_a_rejection(
    powerbi: tuple[FakePowerBi, str], principal: Principal
) -> None:
    _, url = powerbi
    eng = engine(powerbi_settings(url, EMBEDGATE_POWERBI_CLIENT_SECRET="wrong-secret-value-456"))
    with pytest.raises(IssuerError) as caught:
        eng.service.get_token(principal, "s1")
    assert caught.value.code == "provider_rejected"
    assert "wrong-secret-value" not in str(caught.value)


# -- Preset -----------------------------------------------------------------------------------


@pytest.fixture
def preset() -> Iterator[tuple[FakePreset, str]]:
    fake = FakePreset("api-token-name", "api-token-secret-xyz", "team42", "ws7")
    with serve(fake.app) as url:
        yield fake, url


def preset_settings(url: str, **extra: str) -> dict[str, Any]:
    return {
        "EMBEDGATE_PROVIDER": "preset",
        "EMBEDGATE_PROVIDER_URL": url,
        "EMBEDGATE_PRESET_API_TOKEN": "api-token-name",
        "EMBEDGATE_PRESET_API_SECRET": "api-token-secret-xyz",
        "EMBEDGATE_PRESET_TEAM": "team42",
        "EMBEDGATE_PRESET_WORKSPACE": "ws7",
        "EMBEDGATE_PRESET_DOMAIN": "https://ws7.us1a.app.preset.io",
        "EMBEDGATE_PRESET_DASHBOARDS": "dash-uuid-1",
        "EMBEDGATE_PRESET_RLS": '{"region": "region"}',
        "EMBEDGATE_PRESET_RETRIES": "0",
        **extra,
    }


def test_preset_exchanges_the_api_token_then_mints_guest_tokens(
    preset: tuple[FakePreset, str], principal: Principal
) -> None:
    fake, url = preset
    eng = engine(preset_settings(url))
    token = eng.service.get_token(principal, "s1")
    claims = jwt.decode(token.token, options={"verify_signature": False})
    assert claims["type"] == "guest"
    assert claims["resources"] == [{"type": "dashboard", "id": "dash-uuid-1"}]
    assert claims["rls_rules"] == [{"clause": "region = 'EU'"}]
    assert token.expires_at == claims["exp"]
    eng.service.get_token(principal, "s2")
    assert len(fake.calls("/v1/auth/")) == 1
    assert len(fake.calls("guest-token")) == 2
    fake.valid_access.clear()  # the access token expired on Preset's side
    eng.service.get_token(principal, "s3")
    assert len(fake.calls("/v1/auth/")) == 2
    [(_, _), (_tag, attrs)] = elements(eng.profile.snippet("dashboard", "dash-uuid-1", token, {}))
    assert attrs["data-embedgate-sdk"] == "preset"
    assert attrs["data-embedgate-domain"] == "https://ws7.us1a.app.preset.io"


def test_preset_wrong_secret_and_missing_domain(
    preset: tuple[FakePreset, str], principal: Principal
) -> None:
    _, url = preset
    eng = engine(preset_settings(url, EMBEDGATE_PRESET_API_SECRET="nope-nope-nope"))
    with pytest.raises(IssuerError) as caught:
        eng.service.get_token(principal, "s1")
    assert caught.value.code == "provider_rejected"
    assert "nope-nope" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="EMBEDGATE_PRESET_DOMAIN"):
        engine({k: v for k, v in preset_settings(url).items() if "DOMAIN" not in k})
    with pytest.raises(ConfigurationError, match="EMBEDGATE_PRESET_TEAM"):
        engine(preset_settings(url, EMBEDGATE_PRESET_TEAM="../admin"))


# -- ThoughtSpot ------------------------------------------------------------------------------


@pytest.fixture
def thoughtspot() -> Iterator[tuple[FakeThoughtSpot, str]]:
    fake = FakeThoughtSpot("ts-trusted-auth-secret-key")
    with serve(fake.app) as url:
        yield fake, url


def thoughtspot_settings(url: str, **extra: str) -> dict[str, Any]:
    return {
        "EMBEDGATE_PROVIDER": "thoughtspot",
        "EMBEDGATE_PROVIDER_URL": url,
        "EMBEDGATE_API_KEY": "ts-trusted-auth-secret-key",
        "EMBEDGATE_TTL": "600",
        "EMBEDGATE_THOUGHTSPOT_RUNTIME_FILTERS": '{"Region": "region", "Team": "teams"}',
        "EMBEDGATE_THOUGHTSPOT_RETRIES": "0",
        **extra,
    }


def test_thoughtspot_full_token_with_runtime_filters(
    thoughtspot: tuple[FakeThoughtSpot, str], principal: Principal
) -> None:
    fake, url = thoughtspot
    eng = engine(thoughtspot_settings(url, EMBEDGATE_THOUGHTSPOT_ORG_ID="3"))
    token = eng.service.get_token(principal, "s1")
    assert token.token == "ts-1-ada"
    assert 590 < token.expires_at - time.time() <= 601
    [seen] = fake.seen
    assert seen["path"] == "/api/rest/2.0/auth/token/full"
    body = seen["body"]
    assert body["username"] == "ada"
    assert body["org_id"] == 3
    assert body["validity_time_in_sec"] == 600
    assert body["user_parameters"]["runtime_filters"] == [
        {"column_name": "Region", "operator": "EQ", "values": ["EU"], "persist": False},
        {"column_name": "Team", "operator": "IN", "values": ["north", "south"], "persist": False},
    ]
    markup = eng.profile.snippet("liveboard", "lb-1", token, {})
    assert token.token not in markup
    assert "secret" not in markup
    assert elements(markup)[-1][1]["data-embedgate-sdk"] == "thoughtspot"


def test_thoughtspot_object_token_and_errors(
    thoughtspot: tuple[FakeThoughtSpot, str], principal: Principal
) -> None:
    fake, url = thoughtspot
    eng = engine(
        thoughtspot_settings(
            url, EMBEDGATE_THOUGHTSPOT_TOKEN_TYPE="object", EMBEDGATE_THOUGHTSPOT_OBJECT_ID="lb-9"
        )
    )
    eng.service.get_token(principal, "s1")
    assert fake.seen[0]["path"].endswith("/object")
    assert fake.seen[0]["body"]["object_id"] == "lb-9"
    fake.fail.append(429)
    with pytest.raises(IssuerError) as caught:
        eng.service.get_token(principal, "s2")
    assert caught.value.code == "provider_rate_limited"
    with pytest.raises(PrincipalError, match=r"attributes\.region"):
        eng.service.get_token(Principal(subject="bob", attributes={"teams": ["x"]}), "s3")
    with pytest.raises(ConfigurationError, match="EMBEDGATE_THOUGHTSPOT_OBJECT_ID"):
        engine(thoughtspot_settings(url, EMBEDGATE_THOUGHTSPOT_TOKEN_TYPE="object"))
    bad = engine(thoughtspot_settings(url, EMBEDGATE_API_KEY="not-the-key"))
    with pytest.raises(IssuerError) as rejected:
        bad.service.get_token(principal, "s4")
    assert rejected.value.code == "provider_rejected"


# -- Sigma ------------------------------------------------------------------------------------


@pytest.fixture
def sigma() -> Iterator[tuple[FakeSigma, str]]:
    fake = FakeSigma("acme-org", {"client-abc": SECRET})
    with serve(fake.app) as url:
        yield fake, url


def sigma_settings(url: str, **extra: str) -> dict[str, Any]:
    return {
        "EMBEDGATE_PROVIDER": "sigma",
        "EMBEDGATE_PROVIDER_URL": url,
        "EMBEDGATE_SECRET": SECRET,
        "EMBEDGATE_SIGMA_CLIENT_ID": "client-abc",
        "EMBEDGATE_SIGMA_ORG": "acme-org",
        **extra,
    }


def test_sigma_signed_urls_open_once_and_carry_the_user(
    sigma: tuple[FakeSigma, str], principal: Principal
) -> None:
    _fake, url = sigma
    eng = engine(sigma_settings(url))
    first = eng.service.get_token(principal, "s1", "Sales-Workbook-3f2a1b")
    second = eng.service.get_token(principal, "s1", "Sales-Workbook-3f2a1b")
    assert first.url != second.url, "each render gets its own jti"
    assert first.url is not None
    assert second.url is not None
    opened = httpx.get(first.url)
    assert opened.status_code == 200, opened.text
    assert httpx.get(first.url).status_code == 401  # replayed jti
    assert httpx.get(second.url).status_code == 200
    token = parse_qs(urlsplit(first.url).query)[":jwt"][0]
    assert jwt.get_unverified_header(token)["kid"] == "client-abc"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="sigmacomputing")
    assert claims["sub"] == "ada@example.com"
    assert claims["teams"] == ["finance"]
    assert claims["user_attributes"] == {
        "region": "EU",
        "level": "3",
        "teams": "north,south",
        "tenant": "acme",
    }
    assert claims["first_name"] == "Ada"
    assert claims["last_name"] == "Lovelace"
    markup = eng.profile.snippet("workbook", "Sales-Workbook-3f2a1b", first, {})
    assert elements(markup)[0][1]["data-embedgate-refresh"] == "none"


@pytest.mark.parametrize(
    "resource",
    [
        "..",
        "a/../b",
        "wb/page/..",
        "wb\\evil",
        "wb/other/x",
        "%2e%2e",
        "//evil.example",
        "wb?x=1",
        "",
    ],
)
def test_sigma_refuses_resources_that_are_not_workbook_paths(
    principal: Principal, resource: str
) -> None:
    eng = engine(sigma_settings("https://app.sigmacomputing.com"))
    with pytest.raises(ConfigurationError):
        eng.service.get_token(principal, "s1", resource)


def test_sigma_version_1_0_and_subject_usernames(sigma: tuple[FakeSigma, str]) -> None:
    fake, url = sigma
    eng = engine(
        sigma_settings(url, EMBEDGATE_SIGMA_VERSION="1.0", EMBEDGATE_SIGMA_USERNAME="subject")
    )
    token = eng.service.get_token(Principal(subject="carol@example.com"), "s1", "wb-1/page/p2")
    assert token.url is not None
    assert httpx.get(token.url).status_code == 200
    claims = fake.seen[0]["body"]
    assert ":jwt" in claims
    with pytest.raises(PrincipalError):
        eng.service.get_token(Principal(subject="has space"), "s1", "wb-1")


# -- QuickSight -------------------------------------------------------------------------------

ACCOUNT = "123456789012"


@pytest.fixture
def quicksight(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeQuickSight, str]]:
    pytest.importorskip("boto3", reason="boto3 is in the test extra")
    fake = FakeQuickSight("AKIAFAKEEXAMPLE", "fake/secret/access/key", "eu-west-1", ACCOUNT)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake/secret/access/key")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    with serve(fake.app) as url:
        yield fake, url


def quicksight_settings(url: str, **extra: str) -> dict[str, Any]:
    return {
        "EMBEDGATE_PROVIDER": "quicksight",
        "EMBEDGATE_QUICKSIGHT_REGION": "eu-west-1",
        "EMBEDGATE_QUICKSIGHT_ACCOUNT_ID": ACCOUNT,
        "EMBEDGATE_QUICKSIGHT_ENDPOINT_URL": url,
        "EMBEDGATE_QUICKSIGHT_SESSION_TAGS": '{"tenant": "tenant", "region": "region"}',
        "EMBEDGATE_QUICKSIGHT_RETRIES": "0",
        **extra,
    }


def test_quicksight_anonymous_urls_are_signed_tagged_and_never_cached(
    quicksight: tuple[FakeQuickSight, str], principal: Principal
) -> None:
    fake, url = quicksight
    eng = engine(quicksight_settings(url))
    assert not eng.profile.session_tokens
    first = eng.service.get_token(principal, "s1", "dash-1")
    second = eng.service.get_token(principal, "s1", "dash-1")
    assert first.url != second.url
    assert first.single_use
    assert first.expires_at - time.time() <= 300
    body = fake.seen[0]["body"]
    assert body["Namespace"] == "default"
    assert body["AuthorizedResourceArns"] == [
        f"arn:aws:quicksight:eu-west-1:{ACCOUNT}:dashboard/dash-1"
    ]
    assert body["SessionTags"] == [
        {"Key": "region", "Value": "EU"},
        {"Key": "tenant", "Value": "acme"},
    ]
    assert body["ExperienceConfiguration"] == {"Dashboard": {"InitialDashboardId": "dash-1"}}
    [(tag, attrs)] = elements(eng.profile.snippet("dashboard", "dash-1", first, {}))
    assert tag == "iframe"
    assert attrs["src"] == first.url


def test_quicksight_registered_users_async_and_errors(
    quicksight: tuple[FakeQuickSight, str], principal: Principal
) -> None:
    fake, url = quicksight
    settings = quicksight_settings(
        url,
        EMBEDGATE_QUICKSIGHT_MODE="registered",
        EMBEDGATE_QUICKSIGHT_USER_ARN=f"arn:aws:quicksight:eu-west-1:{ACCOUNT}:user/default/{{subject}}",
    )
    settings.pop("EMBEDGATE_QUICKSIGHT_SESSION_TAGS")
    eng = engine(settings)

    async def main() -> str | None:
        return (await eng.service.aget_token(principal, "s1", "dash-2")).url

    assert anyio.run(main) is not None
    assert fake.seen[0]["body"]["UserArn"].endswith(":user/default/ada")
    fake.fail.append(429)
    with pytest.raises(IssuerError) as caught:
        eng.service.get_token(principal, "s1", "dash-2")
    assert caught.value.code == "provider_rate_limited"
    with pytest.raises(ConfigurationError):
        eng.service.get_token(principal, "s1", "../dash")
    with pytest.raises(PrincipalError):
        eng.service.get_token(Principal(subject="evil/../x"), "s1", "dash-2")


def test_quicksight_a_wrong_signature_is_refused(
    quicksight: tuple[FakeQuickSight, str], principal: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = quicksight
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not/the/right/secret")
    eng = engine(quicksight_settings(url))
    with pytest.raises(IssuerError) as caught:
        eng.service.get_token(principal, "s1", "dash-1")
    assert caught.value.code == "provider_rejected"
    assert "not/the/right" not in str(caught.value)


def test_quicksight_settings_are_checked() -> None:
    pytest.importorskip("boto3", reason="boto3 is in the test extra")
    base = quicksight_settings("https://quicksight.eu-west-1.amazonaws.com")
    with pytest.raises(ConfigurationError, match="ACCOUNT_ID"):
        engine({**base, "EMBEDGATE_QUICKSIGHT_ACCOUNT_ID": "12"})
    with pytest.raises(ConfigurationError, match="USER_ARN"):
        engine({**base, "EMBEDGATE_QUICKSIGHT_MODE": "registered"})
    with pytest.raises(ConfigurationError, match="REGION"):
        engine({**base, "EMBEDGATE_QUICKSIGHT_REGION": "mars"})


def test_concurrent_renders_of_a_session_share_one_powerbi_token(
    powerbi: tuple[FakePowerBi, str], principal: Principal
) -> None:
    fake, url = powerbi
    eng = engine(powerbi_settings(url))
    results: list[str] = []

    def render() -> None:
        results.append(eng.service.get_token(principal, "one-session").token)

    threads = [threading.Thread(target=render) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    assert len(fake.calls("GenerateToken")) == 1
