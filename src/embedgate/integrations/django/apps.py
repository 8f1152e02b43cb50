"""The Django app: connects the logout purge and drops the engine when settings change."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class EmbedgateConfig(AppConfig):  # type: ignore[misc]  # django ships no type hints
    name = "embedgate.integrations.django"
    label = "embedgate"
    verbose_name = "embedgate"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out
        from django.core.signals import setting_changed

        from .runtime import purge_on_logout, reset

        user_logged_out.connect(purge_on_logout, dispatch_uid="embedgate.purge_on_logout")

        def settings_changed(setting: str, **kwargs: Any) -> None:
            if setting in ("EMBEDGATE", "DEBUG"):
                reset()

        setting_changed.connect(settings_changed, weak=False, dispatch_uid="embedgate.reset")
