"""Account password rules (NIST SP 800-63B rev. 4): length, not common, not the username."""

from __future__ import annotations

import functools
import unicodedata
from importlib import resources

from flask import current_app

MAX_LENGTH = 1024


@functools.cache
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.casefold() for line in text.splitlines() if line and not line.startswith("#"))


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def password_problems(password: str, username: str | None = None) -> list[str]:
    """What is wrong with a new password, as sentences for the client; empty when it is fine."""
    normalized = normalize(password)
    minimum = current_app.config["PASSWORD_MIN_LENGTH"]
    problems = []
    if len(normalized) < minimum:
        problems.append(f"Use at least {minimum} characters; a passphrase of a few words is easiest.")
    if len(normalized) > MAX_LENGTH:
        problems.append(f"Use at most {MAX_LENGTH} characters.")
    if normalized.casefold() in common_passwords():
        problems.append("This password is one of the most common ones; choose another.")
    if username and normalized.strip().casefold() == normalize(username).strip().casefold():
        problems.append("The password must not be the username.")
    return problems
