"""What ``embedgate.js`` may do with a provider's tokens, sent to it in the page's data block.

The script writes a token only into elements the server rendered for that response (they
carry the response's ``data-embedgate-bind`` value, see :data:`BIND_ATTRIBUTE`), only into
the attributes a profile lists here, and builds or hands over only URLs that the browser
resolves to one of the profile's origins. A new front-end SDK handover is a name in
``sdks`` here plus one entry of the script's ``HANDOVERS`` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..urls import PAGE_ORIGIN, origin_of

__all__ = ["ANY_ATTRIBUTE", "BIND_ATTRIBUTE", "BrowserPolicy", "browser_policy"]

BIND_ATTRIBUTE = "data-embedgate-bind"
"""Carried by every element a helper renders for the script; its value is the response's."""

ANY_ATTRIBUTE = "*"
"""In ``attributes``: any plain attribute of a custom element (the generic profile, whose
template chooses the name); the script's own rules still refuse ``on*``, ``style``,
``href``, ``srcdoc`` and every other URL or markup attribute."""


@dataclass(frozen=True)
class BrowserPolicy:
    """``origins``: serialised origins (``https://host[:port]``) or ``"self"`` (the page's
    own) that URLs the script builds or hands to an SDK must resolve to. ``attributes``:
    the names a bound element may carry the token in (``"src"``: an iframe's URL, built
    from its ``data-embedgate-url-template``). ``sdks``: the front-end SDK handovers the
    page may ask for (``data-embedgate-sdk``)."""

    origins: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    sdks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for origin in self.origins:
            if origin != PAGE_ORIGIN and origin_of(origin) != origin:
                raise ConfigurationError("browser policy", f"{origin!r} is not an origin")

    @classmethod
    def for_urls(cls, *urls: str | None, **fields: Any) -> BrowserPolicy:
        """A policy whose origins are those of ``urls`` (None skipped)."""
        origins: list[str] = []
        for url in urls:
            origin = None if url is None else origin_of(url)
            if origin is not None and origin not in origins:
                origins.append(origin)
        return cls(origins=tuple(origins), **fields)

    def data(self) -> dict[str, list[str]]:
        """The ``allow`` member of the data block."""
        return {
            "origins": list(self.origins),
            "attributes": list(self.attributes),
            "sdks": list(self.sdks),
        }


def browser_policy(profile: object) -> BrowserPolicy:
    """The profile's policy; a profile that declares none lets the script write nothing."""
    method = getattr(profile, "browser_policy", None)
    policy = method() if callable(method) else None
    return policy if isinstance(policy, BrowserPolicy) else BrowserPolicy()
