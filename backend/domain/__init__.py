"""The card-link domain: plain classes and the rules of domain.md (R1–R16), no framework."""
