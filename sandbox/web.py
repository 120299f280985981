"""HTTP helpers shared by the sandbox routers: mount-aware URLs, templates, JSON errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from sandbox.state import Issuer

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    keep_trailing_newline=True,
)

ISSUER_TITLES: dict[Issuer, str] = {
    "amex": "アメリカン・エキスプレス オンライン・サービス",
    "jcb": "MyJCB",
}

PRODUCT_NAMES: dict[str, str] = {
    "amex_business": "アメリカン・エキスプレス・ビジネス・カード",
    "amex_business_gold": "アメリカン・エキスプレス・ビジネス・ゴールド・カード",
    "amex_business_platinum": "アメリカン・エキスプレス・ビジネス・プラチナ・カード",
    "amex_personal_green": "アメリカン・エキスプレス・カード",
    "jcb_general": "JCB一般カード",
    "jcb_gold": "JCBゴールド",
    "jcb_platinum": "JCBプラチナ",
    "jcb_corporate": "JCB法人カード",
    "jcb_excluded": "JCBカード（MyJCB対象外）",
}


def mount_prefix(request: Request) -> str:
    """The path this issuer app is mounted at, e.g. ``/sandbox/amex`` (may be empty)."""
    root_path: str = request.scope.get("root_path", "")
    return root_path.rstrip("/")


def issuer_base_url(request: Request) -> str:
    """The absolute base URL of this issuer, including the mount prefix."""
    return f"{request.url.scheme}://{request.url.netloc}{mount_prefix(request)}"


def route_path(scope: Mapping[str, Any]) -> str:
    """The request path relative to the mount prefix."""
    path: str = scope.get("path", "")
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        return path[len(root_path) :] or "/"
    return path


def render(
    request: Request,
    issuer: Issuer,
    template: str,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render one of the Japanese pages with the links the mount prefix needs."""
    html = TEMPLATES.get_template(template).render(
        prefix=mount_prefix(request),
        issuer=issuer,
        issuer_title=ISSUER_TITLES[issuer],
        product_names=PRODUCT_NAMES,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def json_error(
    status_code: int,
    error: str,
    description: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error answer in the contract's ``{"error", "error_description"}`` shape."""
    body = {"error": error}
    if description is not None:
        body["error_description"] = description
    return JSONResponse(body, status_code=status_code, headers=headers)
