"""JCB cards registrable to MyJCB (R1): the JCB connector."""

from __future__ import annotations

from typing import Literal

from backend.service.ports import TokenSet
from connectors.issuers.oauth_client import OAuthIssuerGateway


class JcbGateway(OAuthIssuerGateway):
    """JCB via MyJCB, reached by API (one grant per MyJCB ID) and by the legacy login.

    What is particular to JCB, as the issuer enforces it:

    - A grant covers every card of every user under the MyJCB ID (R9); there is
      no card choice. ``grant_info`` lists them all.
    - A combined-login ID (おまとめログイン) can consent, and ``grant_info``
      reports ``subject_kind="combined"``; the back end refuses such a grant (R6).
    - Statements confirmed on MyJCB reach the API only after a delay (R9), and
      after an upgrade or downgrade only the new card's statements come (R7).
    - Revoking the refresh token (RFC 7009) stops the grant itself.
    """

    issuer: Literal["jcb"] = "jcb"

    async def revoke(self, tokens: TokenSet) -> None:
        """Revoke the tokens (RFC 7009); for JCB this also stops the grant."""
        await super().revoke(tokens)
