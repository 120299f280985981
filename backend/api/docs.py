"""``/docs``: the interactive API reference, served with its own copy of Swagger UI.

Nothing is loaded from a CDN: the script and styles come from the installed
``swagger-ui-bundle`` package, and the page's one inline script is allowed by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from swagger_ui_bundle import swagger_ui_path

from backend.domain import errors

DOCS_PATH = "/docs"
_ASSETS = f"{DOCS_PATH}/assets"
# A fixed list, not a directory mount: nothing else of the package becomes public.
_FILES = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def _page(title: str, openapi_url: str) -> tuple[bytes, str]:
    body = bytes(
        get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_ASSETS}/favicon-32x32.png",
        ).body
    )
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(body.decode())
    )
    # Swagger UI sets style attributes from its script, hence 'unsafe-inline' for styles.
    policy = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )
    return body, policy


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` for an app created with ``docs_url=None``."""
    body, policy = _page(f"{app.title} - API", app.openapi_url or "/openapi.json")
    headers = {"Content-Security-Policy": policy, "Referrer-Policy": "no-referrer"}

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(body, headers=headers)

    @app.get(f"{_ASSETS}/{{name}}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        if name not in _FILES:
            raise errors.NotFound("no such file")
        return FileResponse(Path(swagger_ui_path) / name)
