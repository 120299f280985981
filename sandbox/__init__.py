"""Simulated American Express and JCB issuers for renkei's tests and demos.

The HTTP contract is ``docs/issuer-api.md``. This package depends on FastAPI,
Starlette, Jinja2 and httpx only, never on the rest of renkei.
"""

from sandbox.app import create_app, create_issuer_app
from sandbox.state import ClientRegistration, SandboxState

__all__ = ["ClientRegistration", "SandboxState", "create_app", "create_issuer_app"]
