"""A minimal Django site to attack the cache headers of token pages with. No database:
the user is an ``X-User`` header (see middleware.py); EMBEDGATE_SECRET comes from the
environment."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

INSTALLED_APPS = ["embedgate.integrations.django"]
MIDDLEWARE = ["tests.security.django_site.middleware.HeaderUserMiddleware"]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [str(HERE / "templates")],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
EMBEDGATE: dict[str, str] = {}
SECRET_KEY = "django-security-test-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "tests.security.django_site.urls"
DATABASES: dict[str, object] = {}
USE_TZ = True
