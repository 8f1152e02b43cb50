"""The ``embedgate`` command: keygen, mint, inspect, jwks, doctor, demo."""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import jwt

from . import __version__
from .config import Config
from .engine import Engine
from .errors import ConfigurationError, EmbedgateError, ProductionRefusedError
from .keys import (
    ASYMMETRIC_ALGORITHMS,
    HMAC_ALGORITHMS,
    HMAC_KEY_BYTES,
    KeySet,
    generate_private_pem,
    keyset_from_config,
)
from .principal import Principal
from .verify import verify

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _parse_attr(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    value: Any = raw
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    elif raw.lstrip("-").isdigit():
        value = int(raw)
    return name, value


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="embedgate",
        description="Short-lived, signed embed tokens for embedded analytics.",
        epilog="Settings come from EMBEDGATE_* environment variables (see the README's "
        "configuration reference). `embedgate COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"embedgate {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    keygen = commands.add_parser("keygen", help="make an HMAC secret or a PEM key pair")
    keygen.add_argument(
        "--algorithm",
        "-a",
        default="HS256",
        choices=sorted(HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS),
    )
    keygen.add_argument(
        "--out",
        help="write the private key here (mode 0600) and the public "
        "key to OUT.pub, instead of stdout",
    )

    mint = commands.add_parser(
        "mint",
        help="development: print a token for a subject",
        description="Print a token for a subject, signed (or minted by the provider) exactly as "
        "the middleware would. Refuses to run when EMBEDGATE_ENV is production.",
        epilog=_READS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mint.add_argument("--sub", required=True, help="the subject (user id)")
    mint.add_argument(
        "--attr",
        action="append",
        default=[],
        type=_parse_attr,
        metavar="KEY=VALUE",
        help="a user attribute (repeatable)",
    )
    mint.add_argument("--role", action="append", default=[], help="a role (repeatable)")
    mint.add_argument("--group", action="append", default=[], help="a group (repeatable)")
    mint.add_argument("--tenant")
    mint.add_argument("--email")
    mint.add_argument("--resource", help="resource (dashboard id) the token is for")
    mint.add_argument("--ttl", type=int, help="lifetime in seconds (default EMBEDGATE_TTL)")

    inspect = commands.add_parser(
        "inspect",
        help="show a token's header, claims and expiry",
        description="Show a token's header, claims and expiry. With a key configured, report "
        "the signature (EMBEDGATE_SECRET, EMBEDGATE_PRIVATE_KEY(_FILE) and the rotation keys) "
        "and, separately, the claim checks (EMBEDGATE_AUDIENCE, EMBEDGATE_ISSUER, "
        "EMBEDGATE_LEEWAY).",
    )
    inspect.add_argument("token", help="the token ('-' reads it from stdin)")

    commands.add_parser("jwks", help="print the public key set (JWKS) as JSON")

    doctor = commands.add_parser(
        "doctor", help="check this deployment (settings, keys, provider, Redis, JWKS)"
    )
    doctor.add_argument("--json", action="store_true", help="one JSON object, for machines")
    doctor.add_argument(
        "--app-url", help="the deployed app's base URL: compare the JWKS it publishes"
    )
    doctor.add_argument("--no-mint", action="store_true", help="skip the test mint at the provider")
    doctor.add_argument("--resource", help="the resource of the test mint (per-resource providers)")

    demo = commands.add_parser("demo", help="run the embedded-analytics demo")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--ttl", type=int, default=60, help="token lifetime in the demo")
    return parser


_READS = """settings read from the environment:
  EMBEDGATE_SECRET, or EMBEDGATE_PRIVATE_KEY / EMBEDGATE_PRIVATE_KEY_FILE   the signing key
  EMBEDGATE_ALGORITHM   HS256 by default, or the private key's algorithm
  EMBEDGATE_AUDIENCE, EMBEDGATE_ISSUER   the aud and iss claims
  EMBEDGATE_TTL         lifetime in seconds (--ttl overrides it)
  EMBEDGATE_PROVIDER    and its EMBEDGATE_<PROVIDER>_* settings (a remote provider mints)
  EMBEDGATE_ENV         production refuses to mint
  any other EMBEDGATE_* setting of the configuration reference (attribute policy, claims)"""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def cmd_keygen(args: argparse.Namespace) -> int:
    if args.algorithm in HMAC_ALGORITHMS:
        secret = _b64(secrets.token_bytes(HMAC_KEY_BYTES[args.algorithm]))
        if args.out:
            _write_private(args.out, (secret + "\n").encode())
            print(f"wrote the secret to {args.out}", file=sys.stderr)
        else:
            print(secret)
        return EXIT_OK
    pem = generate_private_pem(args.algorithm)
    from .keys import SigningKey

    key = SigningKey.private(pem, args.algorithm)
    public = key.public_pem() or b""
    if args.out:
        _write_private(args.out, pem)
        with open(args.out + ".pub", "wb") as handle:
            handle.write(public)
        print(
            f"wrote {args.out} (private, mode 0600) and {args.out}.pub; kid {key.kid}",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(pem.decode() + public.decode())
    return EXIT_OK


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # The mode given to O_CREAT only applies to a new file: tighten an existing one before
    # the key is written into it.
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def cmd_mint(args: argparse.Namespace) -> int:
    config = Config.load()
    if config.is_production:
        raise ProductionRefusedError(
            "EMBEDGATE_ENV",
            "`embedgate mint` is a development tool and refuses to run in production",
        )
    if args.ttl is not None:
        config = config.replace(ttl=args.ttl)
    engine = Engine(config)
    principal = Principal(
        subject=args.sub,
        tenant=args.tenant,
        email=args.email,
        roles=tuple(args.role),
        groups=tuple(args.group),
        attributes=dict(args.attr),
    )
    token = engine.get_token(principal, "cli:" + secrets.token_hex(8), args.resource)
    print(token.url or token.token)
    return EXIT_OK


def _human_time(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return repr(value)
    when = datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    delta = int(value - time.time())
    relative = f"in {delta} s" if delta >= 0 else f"{-delta} s ago"
    return f"{value} ({when}, {relative})"


def cmd_inspect(args: argparse.Namespace) -> int:
    token = sys.stdin.read().strip() if args.token == "-" else args.token.strip()
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        print(f"embedgate: not a JWT: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print("header:")
    print(json.dumps(header, indent=2, sort_keys=True))
    print("claims:")
    print(json.dumps(claims, indent=2, sort_keys=True))
    for name in ("iat", "nbf", "exp"):
        if name in claims:
            print(f"{name}: {_human_time(claims[name])}")
    try:
        config = Config.load()
        keys = keyset_from_config(config)
    except ConfigurationError:
        print(
            "signature: NOT verified (no key configured: set EMBEDGATE_SECRET or "
            "EMBEDGATE_PRIVATE_KEY)"
        )
        return EXIT_OK
    if not _report_signature(token, keys):
        print("claims: not checked (the signature is not valid)")
        return EXIT_ERROR
    try:
        verify(token, keys, audience=config.audience, issuer=config.issuer, leeway=config.leeway)
    except EmbedgateError as exc:
        print(f"claims: REJECTED ({exc})")
        return EXIT_ERROR
    print("claims: valid (audience, issuer and lifetime as configured)")
    return EXIT_OK


def _report_signature(token: str, keys: KeySet) -> bool:
    """Print whether a key of ``keys`` signed ``token``, whatever its claims say."""
    kid = jwt.get_unverified_header(token).get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        print(
            "signature: INVALID with the configured key (token was signed with an unknown key id)"
        )
        return False
    try:
        jwt.decode(
            token,
            key.verification_material(),
            algorithms=[key.algorithm],
            options={
                "verify_aud": False,
                "verify_iss": False,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "require": [],
            },
        )
    except jwt.PyJWTError as exc:
        print(f"signature: INVALID with the configured key ({exc})")
        return False
    print(f"signature: valid (key {kid})")
    return True


def cmd_jwks(args: argparse.Namespace) -> int:
    keys = keyset_from_config(Config.load())
    print(json.dumps(keys.jwks(), indent=2))
    if not keys.has_public_keys:
        print(
            "embedgate: HMAC keys are secret and never published; the set is empty", file=sys.stderr
        )
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import Doctor, Options, report

    options = Options(app_url=args.app_url, mint=not args.no_mint, resource=args.resource)
    return report(Doctor(options=options).run(), as_json=args.json, write=print)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo  # the demo needs the [demo] extra

    return run_demo(host=args.host, port=args.port, ttl=args.ttl)


COMMANDS = {
    "keygen": cmd_keygen,
    "mint": cmd_mint,
    "inspect": cmd_inspect,
    "jwks": cmd_jwks,
    "doctor": cmd_doctor,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``embedgate`` console script."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    try:
        return COMMANDS[args.command](args)
    except EmbedgateError as exc:
        print(f"embedgate: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
