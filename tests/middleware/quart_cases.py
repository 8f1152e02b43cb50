"""The table's cases served by a Quart app behind the Quart extension: each answer made the
Quart way (a body, an async generator, ``send_file``), the user handed over in ``g.user``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from quart import Quart, Response, g, request, send_file
from werkzeug.datastructures import Headers

from embedgate.integrations.quart import EmbedGate
from tests.middleware.cases import APP_MARKER, BY_NAME, FILES, make_engine


def quart_app() -> Quart:
    app = Quart(__name__)
    EmbedGate().init_app(app, engine=make_engine())

    @app.route("/case/<name>", methods=["GET", "HEAD"])
    async def case_view(name: str) -> Response:
        case = BY_NAME[name]
        if case.user is not None:
            g.user = {"sub": case.user}
        if case.file is not None:
            response = await send_file(FILES / case.file)
            if case.content_type is not None:
                response.headers["Content-Type"] = case.content_type  # with its charset
            response.headers[APP_MARKER[0]] = APP_MARKER[1]
            return response
        headers = Headers(case.response_headers())
        empty = request.method == "HEAD" or case.status in (204, 304)
        chunks = () if empty else case.chunks
        if len(chunks) > 1 or not case.content_length:

            async def stream() -> AsyncIterator[bytes]:
                for chunk in chunks:
                    yield chunk

            return Response(stream(), status=case.status, headers=headers)
        return Response(b"".join(chunks), status=case.status, headers=headers)

    return app
