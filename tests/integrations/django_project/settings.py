"""The Django project the Django adapter is tested on: docs/snippets/django_settings.py
plus a database, URLs and a test app. EMBEDGATE_SECRET comes from the environment."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
_snippet = runpy.run_path(str(ROOT / "docs" / "snippets" / "django_settings.py"))

INSTALLED_APPS = [*_snippet["INSTALLED_APPS"], "tests.integrations.django_project.pages"]
MIDDLEWARE = _snippet["MIDDLEWARE"]
TEMPLATES = _snippet["TEMPLATES"]
EMBEDGATE = _snippet["EMBEDGATE"]

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-test-only-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "tests.integrations.django_project.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", str(ROOT / "test-output" / "django.sqlite3")),
    }
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
LOGGING = {
    "version": 1,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"embedgate": {"handlers": ["console"], "level": "WARNING"}},
}
