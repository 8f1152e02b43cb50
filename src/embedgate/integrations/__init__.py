"""Framework adapters: Flask (:mod:`.flask`), Starlette and FastAPI (:mod:`.starlette`,
:mod:`.fastapi`), Django (:mod:`.django`). Each is imported only when used."""
