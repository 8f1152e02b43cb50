"""Embed markup for profiles: every attribute value escaped, everything ASCII.

Template helpers pass presentational options (``id``, ``class``, ``title``, ``width``,
``height``, ``style``) through to the embedding element, ``nonce`` to script tags, and
``script="false"`` to leave a provider's loader script out (when the page loads it itself).
``bind`` is the response's binding value (added by the template helpers): every element the
browser script may touch carries it as ``data-embedgate-bind`` (see :mod:`.browser`).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from ..errors import ConfigurationError
from ..urls import check_url_template as _check_url_template
from .browser import BIND_ATTRIBUTE

TOKEN_PLACEHOLDER = "{token}"
PRESENTATION = ("id", "class", "title", "width", "height", "style")
BIND_OPTION = "bind"
COMMON_OPTIONS = (*PRESENTATION, "nonce", "script", BIND_OPTION)

_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
# A custom element name needs a hyphen (HTML living standard, "valid custom element name").
_CUSTOM_ELEMENT = re.compile(r"^[a-z][a-z0-9._]*-[a-z0-9._-]*$")


def attr(value: str) -> str:
    """An attribute value: quote-escaped, non-ASCII as character references."""
    return html.escape(value, quote=True).encode("ascii", "xmlcharrefreplace").decode("ascii")


def element(tag: str, attributes: Iterable[tuple[str, str | None]], *, void: bool = False) -> str:
    """``<tag a="v" ...></tag>``; attributes whose value is None are left out."""
    parts = [tag]
    for name, value in attributes:
        if value is None:
            continue
        if not _ATTRIBUTE_NAME.match(name):
            raise ConfigurationError("snippet", f"invalid attribute name {name!r}")
        parts.append(f'{name}="{attr(value)}"')
    opening = f"<{' '.join(parts)}>"
    return opening if void else f"{opening}</{tag}>"


def script(src: str, options: Mapping[str, str], *, module: bool = True) -> str:
    """A loader script tag carrying the page's CSP nonce, or "" when ``script="false"``."""
    if options.get("script", "true").strip().lower() in ("false", "0", "no", "off"):
        return ""
    return element(
        "script",
        [("type", "module" if module else None), ("src", src), ("nonce", options.get("nonce"))],
    )


def presentation(options: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """The presentational attributes the caller asked for."""
    return [(name, options.get(name)) for name in PRESENTATION]


def binding(options: Mapping[str, str]) -> tuple[str, str | None]:
    """The ``data-embedgate-bind`` attribute of an element the browser script may touch."""
    return (BIND_ATTRIBUTE, options.get(BIND_OPTION))


def check_options(
    profile: str, kind: str, options: Mapping[str, str], extra: Iterable[str] = ()
) -> None:
    """Refuse snippet options this kind does not know (a typo in a template)."""
    known = frozenset(COMMON_OPTIONS) | frozenset(extra)
    for name, value in options.items():
        if name not in known:
            raise ConfigurationError(
                f"{profile} snippet option {name!r}",
                f"unknown for kind {kind!r}; expected one of {', '.join(sorted(known))}",
            )
        if not isinstance(value, str):
            raise ConfigurationError(
                f"{profile} snippet option {name!r}",
                f"expected a string, got {type(value).__name__}",
            )


def check_custom_element(setting: str, tag: str) -> str:
    if not _CUSTOM_ELEMENT.match(tag):
        raise ConfigurationError(
            setting, f"{tag!r} is not a custom element name (it needs a hyphen)"
        )
    return tag


def check_attribute_name(setting: str, name: str) -> str:
    """A plain attribute to carry a token: no event handler, no attribute we set ourselves."""
    if (
        not _ATTRIBUTE_NAME.match(name)
        or name.startswith(("on", "data-embedgate"))
        or name in PRESENTATION
    ):
        raise ConfigurationError(setting, f"{name!r} is not an acceptable attribute name")
    return name


def check_url_template(setting: str, template: str, origins: tuple[str, ...] = ()) -> str:
    """An http(s) URL or a path on the page's own site, as the browser resolves it (WHATWG
    URL rules: ``/\\evil.example/``, ``//evil`` or ``java\\tscript:`` are refused), on one of
    ``origins`` when given (see :func:`embedgate.urls.check_url_template`)."""
    return _check_url_template(setting, template, origins)


def fill_token(template: str, token: str) -> str:
    """The URL template with the token in place of ``{token}`` (percent-encoded)."""
    return template.replace(TOKEN_PLACEHOLDER, quote(token, safe=""))
