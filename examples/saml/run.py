"""Run the SAML example: ``python examples/saml/run.py`` (from the repository root).

Without ``SAML_IDP_METADATA`` it also starts the test suite's local SAML IdP (pysaml2's
``Server``) on http://127.0.0.1:8002 with the users ``alice`` / ``alice-password`` and
``bob`` / ``bob-password``, and makes this SP's key and certificate in a temporary
directory; the app is on http://127.0.0.1:8000. Development only.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

from werkzeug.serving import run_simple

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from app import create_app, sp_metadata  # noqa: E402

APP_PORT = int(os.environ.get("PORT", "8000"))
IDP_PORT = int(os.environ.get("IDP_PORT", "8002"))


def main() -> None:
    os.environ.setdefault("SECRET_KEY", secrets.token_hex(32))
    os.environ.setdefault("EMBEDGATE_SECRET", secrets.token_urlsafe(32))
    os.environ.setdefault("SAML_SP_BASE_URL", f"http://127.0.0.1:{APP_PORT}")
    if "SAML_IDP_METADATA" in os.environ:
        run_simple("127.0.0.1", APP_PORT, create_app(), threaded=True)
        return
    from tests.saml.conftest import saml_users
    from tests.saml.idp import LocalSAMLIdP, make_key_pair, running_saml_idp

    with tempfile.TemporaryDirectory(prefix="embedgate-saml-") as tmp:
        directory = Path(tmp)
        key_file, cert_file = make_key_pair(directory, "sp")
        os.environ.setdefault("SAML_SP_KEY_FILE", str(key_file))
        os.environ.setdefault("SAML_SP_CERT_FILE", str(cert_file))
        idp = LocalSAMLIdP(IDP_PORT, directory, saml_users())
        os.environ["SAML_IDP_METADATA"] = idp.metadata()
        idp.trust(sp_metadata(os.environ))
        with running_saml_idp(idp):
            print(
                f"Local SAML IdP on {idp.base_url} (alice / alice-password); "
                f"app on http://127.0.0.1:{APP_PORT}"
            )
            run_simple("127.0.0.1", APP_PORT, create_app(), threaded=True)


if __name__ == "__main__":
    main()
