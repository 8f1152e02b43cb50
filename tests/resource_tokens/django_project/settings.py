"""A Django project with no database: embedgate's middleware (the user from the X-Test-User
header) and two pages embedding resources. EMBEDGATE_* settings come from the environment."""

from __future__ import annotations

from tests.resource_tokens.profile import register

register()  # EMBEDGATE_PROVIDER=reports-test

SECRET_KEY = "django-test-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "tests.resource_tokens.django_project.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "embedgate.integrations.django",
]
MIDDLEWARE = ["tests.resource_tokens.django_project.middleware.HeaderUserMiddleware"]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]
DATABASES: dict[str, object] = {}
USE_TZ = True
