"""embedgate's benchmark: ``python -m bench`` (``make bench``) runs every section in
:data:`bench.__main__.SECTIONS` and prints one table of measurements and ratios."""
