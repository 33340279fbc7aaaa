"""`flask users ...`: accounts made and managed by the server's administrator."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from werkzeug.exceptions import Conflict

from ..extensions import db
from . import services
from .models import User
from .policy import password_problems, username_problem

users = AppGroup("users", help="Create, list and remove accounts.")


def _read_password(username: str) -> str:
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    problems = password_problems(password, username)
    if problems:
        raise click.ClickException(" ".join(problems))
    return password


def _user(username: str) -> User:
    user = services.find_user(username)
    if user is None:
        raise click.ClickException(f"No account named {username!r}.")
    return user


@users.command("create")
@click.argument("username")
def create(username: str) -> None:
    """Create an account (the password is prompted for, or read from stdin)."""
    name = username.strip()
    problem = username_problem(name)
    if problem:
        raise click.ClickException(problem)
    password = _read_password(name)
    try:
        user = services.register_user(name, password)
    except Conflict as error:
        raise click.ClickException(error.description or "That username is already taken.") from None
    click.echo(f"Created account {user.username!r} (id {user.id}).")


@users.command("list")
def list_users() -> None:
    """List the accounts."""
    for user in db.session.execute(db.select(User).order_by(User.id)).scalars():
        click.echo(f"{user.id}\t{user.username}\t{user.created_at.isoformat()}")


@users.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(username: str, yes: bool) -> None:
    """Delete an account with its Eventory logins and tokens."""
    user = _user(username)
    if not yes:
        click.confirm(f"Delete {user.username!r} and all its Eventory logins?", abort=True)
    services.delete_account(user)
    click.echo(f"Deleted account {username!r}.")


@users.command("set-password")
@click.argument("username")
def set_password(username: str) -> None:
    """Set an account's password (prompted, or from stdin); its tokens end."""
    user = _user(username)
    services.set_password(user, _read_password(user.username))
    click.echo(f"Password of {user.username!r} changed; its sessions have ended.")
