"""`flask credentials rotate`: re-encrypt stored Eventory passwords under the first key."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..extensions import db
from .crypto import CredentialError, cipher
from .models import EventoryLogin

credentials = AppGroup("credentials", help="Manage the encryption of stored Eventory passwords.")


@credentials.command("rotate")
@click.option("--batch-size", default=200, show_default=True, help="Logins re-encrypted per transaction.")
def rotate(batch_size: int) -> None:
    """Re-encrypt every stored password under the first key of BACKEND_CREDENTIALS_KEYS.

    Safe to run again; afterwards the old keys can be removed. Rows no key can read are
    reported and left as they are.
    """
    rotated, failed, last_id = 0, [], 0
    while True:
        batch = list(
            db.session.execute(
                db.select(EventoryLogin).where(EventoryLogin.id > last_id).order_by(EventoryLogin.id).limit(batch_size)
            ).scalars()
        )
        if not batch:
            break
        for login in batch:
            try:
                login.password_encrypted = cipher().rotate(login.password_encrypted)
                rotated += 1
            except CredentialError:
                failed.append(f"login {login.id} ({login.label!r}) of user id {login.owner_id}")
        last_id = batch[-1].id
        db.session.commit()
    click.echo(f"Re-encrypted {rotated} stored password(s) under the first key; {len(failed)} could not be read.")
    for description in failed:
        click.echo(f"  cannot decrypt: {description}", err=True)
    if failed:
        raise SystemExit(1)
