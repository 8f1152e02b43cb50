# settings.py — what embedgate adds to a Django project.
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "embedgate.integrations.django",  # {% load embedgate %}, tokens purged on logout
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "embedgate.integrations.django.middleware.EmbedgateMiddleware",  # after authentication
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",  # the tags need the request
                "django.contrib.auth.context_processors.auth",
            ],
        },
    },
]

# Field names or EMBEDGATE_* names; anything missing comes from the environment
# (EMBEDGATE_SECRET belongs there). Production is `not DEBUG`.
EMBEDGATE = {
    "AUDIENCE": "analytics",
    "ISSUER": "https://app.example.com",
}
