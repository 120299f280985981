"""The origins demo sign-in accepts: the configured public address only."""

from __future__ import annotations

from bot.web.page import own_origins


def test_own_origins_of_a_public_address() -> None:
    assert own_origins("https://renkei.example.com/") == {"https://renkei.example.com"}
    assert own_origins("http://renkei.example.com:8080") == {"http://renkei.example.com:8080"}
    assert own_origins("https://renkei.example.com:443") == {"https://renkei.example.com"}


def test_loopback_and_any_address_accept_only_loopback_names() -> None:
    loopback = {"http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"}
    assert own_origins("http://127.0.0.1:8000") == loopback
    assert own_origins("http://0.0.0.0:8000") == loopback
    assert own_origins("http://[::1]:8000") == loopback


def test_no_usable_public_address_accepts_nothing() -> None:
    assert own_origins(None) == set()
    assert own_origins("") == set()
    assert own_origins("renkei.example.com") == set()
    assert own_origins("ftp://renkei.example.com") == set()
