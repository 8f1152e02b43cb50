"""Jinja glue shared by the Flask and Starlette adapters."""

from __future__ import annotations

from markupsafe import Markup


def trusted_markup(html: str) -> Markup:
    """Mark HTML embedgate rendered itself as safe.

    Only for the helpers' output: ``profile.snippet`` and ``render_token_block`` escape
    every value they put into markup, so autoescaping it again would break it.
    """
    return Markup(html)  # noqa: S704 - escaped by its renderer, see the docstring
