"""The guided flows: one ``transitions`` machine per procedure, shared by every conversation.

This package holds no user-facing text: replies name catalog keys (``i18n``).
"""
