"""Sans-I/O web layer: pure decisions over status, headers and body bytes.

No ASGI/WSGI or framework imports and no I/O here; the middleware shells drive these.
"""
