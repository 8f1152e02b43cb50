"""The demo provider under a real uvicorn server on 127.0.0.1, and host tokens for it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from embedgate import IssueRequest, KeySet, LocalSigner, Principal, Secret, SigningKey
from embedgate.keys import generate_private_pem
from tests.conftest import TEST_SECRET
from tests.support.net import free_port

AUDIENCE = "demo-provider"
ISSUER = "demo-host"
API_KEY = "demo-api-key-0123456789abcdef"

USERS: dict[str, Principal] = {
    "alice": Principal("alice", tenant="acme", roles=("analyst",), attributes={"region": "EU"}),
    "bob": Principal("bob", tenant="globex", roles=("viewer",), attributes={"region": "US"}),
    "carol": Principal("carol", tenant="acme", roles=("admin",)),
}


def toucan_user(principal: Principal) -> dict[str, Any]:
    """The generate-token ``user`` for a principal (the tenant travels as an attribute)."""
    attributes = dict(principal.attributes)
    if principal.tenant is not None:
        attributes["tenant"] = principal.tenant
    return {"distinctId": principal.subject, "role": principal.roles[0], "attributes": attributes}


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass(frozen=True)
class Host:
    """The host side: the keys it signs with and a signer for the provider's audience."""

    keys: KeySet
    signer: LocalSigner

    def token(
        self,
        principal: Principal,
        *,
        ttl: int = 300,
        now: float | None = None,
        resource: str | None = None,
    ) -> str:
        request = IssueRequest(
            principal, now=time.time() if now is None else now, ttl=ttl, resource=resource
        )
        return self.signer.issue(request).token


def make_keys(algorithm: str) -> KeySet:
    if algorithm == "HS256":
        return KeySet([SigningKey.hmac(TEST_SECRET)])
    return KeySet([SigningKey.private(generate_private_pem(algorithm), algorithm)])


@pytest.fixture(scope="module", params=["HS256", "EdDSA"])
def host(request: pytest.FixtureRequest) -> Host:
    keys = make_keys(request.param)
    return Host(keys, LocalSigner(keys, issuer=ISSUER, audience=AUDIENCE))


@pytest.fixture(scope="module")
def provider_url(host: Host) -> Iterator[str]:
    from embedgate.demo.provider import create_provider_app

    app = create_provider_app(
        keys=host.keys, audience=AUDIENCE, issuer=ISSUER, api_key=Secret(API_KEY), token_ttl=600
    )
    with serve(app) as url:
        yield url
