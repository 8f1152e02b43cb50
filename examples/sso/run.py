"""Run the SSO example: ``python examples/sso/run.py`` (from the repository root).

Without ``SSO_METADATA_URL`` it also starts the test suite's local OpenID Provider on
http://127.0.0.1:8001 with the user ``alice`` / ``alice-password``; the app is on
http://127.0.0.1:8000. Development only.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

from werkzeug.serving import run_simple

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from app import NAMESPACE, create_app  # noqa: E402

APP_PORT = int(os.environ.get("PORT", "8000"))
IDP_PORT = int(os.environ.get("IDP_PORT", "8001"))


def main() -> None:
    os.environ.setdefault("SECRET_KEY", secrets.token_hex(32))
    os.environ.setdefault("EMBEDGATE_SECRET", secrets.token_urlsafe(32))
    app_url = f"http://127.0.0.1:{APP_PORT}"
    if "SSO_METADATA_URL" in os.environ:
        run_simple("127.0.0.1", APP_PORT, create_app(), threaded=True)
        return
    from tests.sso.idp import IdPClient, IdPUser, running_idp

    client = IdPClient(
        client_id="embedgate-sso-example",
        client_secret=secrets.token_urlsafe(24),
        redirect_uris=[f"{app_url}/callback"],
        backchannel_logout_uri=f"{app_url}/backchannel-logout",
    )
    alice = IdPUser(
        "alice",
        "alice-password",
        {
            "sub": "alice",
            "email": "alice@acme.example",
            "name": "Alice Analyst",
            "groups": ["analysts"],
            "employee_id": "E-1001",
            NAMESPACE: {"tenant": "acme", "region": "eu-west"},
        },
    )
    with running_idp(IDP_PORT, users=[alice], clients=[client]) as idp:
        os.environ.update(
            SSO_METADATA_URL=f"{idp.issuer}/.well-known/openid-configuration",
            SSO_CLIENT_ID=client.client_id,
            SSO_CLIENT_SECRET=client.client_secret,
        )
        print(f"Local IdP on {idp.issuer} (alice / alice-password); app on {app_url}")
        run_simple("127.0.0.1", APP_PORT, create_app(), threaded=True)


if __name__ == "__main__":
    main()
