"""Floors: the least an app can do per request, a fixed JSON answer to any request.
`asgi` is served by uvicorn with the reference's flags, `wsgi` by the app's production
server command (bench/serving.py `app_server`), so that each server's own cost shows."""

BODY = b'{"status":"ok"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
WSGI_HEADERS = [(name.decode(), value.decode()) for name, value in HEADERS]


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def wsgi(environ, start_response):
    start_response("200 OK", WSGI_HEADERS)
    return [BODY]
