"""Django: add ``"embedgate.integrations.django"`` to ``INSTALLED_APPS`` (template tags,
logout purge) and ``"embedgate.integrations.django.middleware.EmbedgateMiddleware"`` to
``MIDDLEWARE`` after ``AuthenticationMiddleware``. Settings come from ``settings.EMBEDGATE``
(a dict of field names or ``EMBEDGATE_*`` keys), then the environment; production is
``not settings.DEBUG``."""
