"""The built-in demo: an analytics provider (``embedgate.demo.provider``) that embedgate's
own ``embedgate demo`` mounts next to a host app, so the whole flow runs in one process."""
