"""Account rules: usernames of letters, digits and `. _ @ -`; passwords (NIST SP 800-63B rev. 4)
long enough, not common, not easy to guess, not the username, with no composition rules."""

from __future__ import annotations

import functools
import unicodedata
from importlib import resources

from flask import current_app
from zxcvbn import zxcvbn

MAX_LENGTH = 1024
USERNAME_LENGTH = (3, 64)
USERNAME_PUNCTUATION = frozenset("._@-")
USERNAME_RULE = "A username has 3 to 64 characters: letters, digits and . _ @ - (no spaces)."
# zxcvbn (Dropbox's estimator, offline) judges this many characters: its time grows fast with the
# length (seconds past a few hundred), and 72 is its own default bound.
ESTIMATED_LENGTH = 72
# zxcvbn's score 3: about 10^8 guesses or more. Below it are keyboard walks, repeats, sequences,
# dictionary words with digits appended (`password1234567`), whatever their length.
MIN_SCORE = 3


@functools.cache
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.casefold() for line in text.splitlines() if line and not line.startswith("#"))


def normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def username_problem(username: str) -> str | None:
    """What is wrong with a new username (already trimmed), or None. Names show up in other
    people's lists and audits: no spaces, quotes or `=` that could make them read as something
    else. Accounts made before this rule keep their names."""
    shortest, longest = USERNAME_LENGTH
    if not shortest <= len(username) <= longest:
        return USERNAME_RULE
    if not all(char.isalnum() or char in USERNAME_PUNCTUATION for char in username):
        return USERNAME_RULE
    return None


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
    elif normalized and easy_to_guess(normalized, username):
        problems.append(
            "This password is easy to guess (a common word, a keyboard pattern, a sequence or a repetition); "
            "a passphrase of a few unrelated words is best."
        )
    if username and normalized.strip().casefold() == normalize(username).strip().casefold():
        problems.append("The password must not be the username.")
    return problems


def easy_to_guess(password: str, username: str | None = None) -> bool:
    """Whether zxcvbn estimates the password's first ESTIMATED_LENGTH characters guessable."""
    hints = [username] if username else []
    return zxcvbn(password[:ESTIMATED_LENGTH], user_inputs=hints)["score"] < MIN_SCORE
