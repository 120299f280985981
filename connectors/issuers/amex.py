"""American Express business cards (R1): the Amex connector."""

from __future__ import annotations

from typing import Literal

from backend.service.ports import TokenSet
from connectors.issuers.oauth_client import OAuthIssuerGateway


class AmexGateway(OAuthIssuerGateway):
    """American Express, reached by API (one card per grant) and by the legacy login.

    What is particular to Amex, as the issuer enforces it:

    - One authorization links exactly one card (R13), and a card can be linked
      under one active grant only (R5, R14); the consent pages refuse the rest.
    - The consent screen lists only cards registered to the online-service ID;
      a supplementary card must be registered first (R15).
    - Revoking tokens does **not** stop the grant (R10): only 停止する on the
      member site does (R16). ``revoke`` therefore leaves the card linked at
      Amex; ``link_status`` tells whether the person has stopped it.
    """

    issuer: Literal["amex"] = "amex"

    async def revoke(self, tokens: TokenSet) -> None:
        """Revoke the tokens (RFC 7009). The Amex grant stays active (R10).

        The card stays blocked for other API links until the person stops the
        link on the member site (R16); the caller checks ``link_status`` before
        it lets an account be deleted.
        """
        await super().revoke(tokens)
