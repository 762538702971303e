"""The `personas` command: a Flask CLI group bound to create_app."""
import secrets

import click
from flask.cli import FlaskGroup, with_appcontext

from webapp.models import Account, Membership, User


def _create_app():
    from webapp import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app)
def main():
    """Personas Import: bulk import of customer personas."""


def _account(name: str) -> Account:
    account = Account.get_or_none(Account.name == name)
    if account is None:
        raise click.UsageError(f"No account named {name!r}.")
    return account


@click.command("init-db")
@with_appcontext
def init_db_command():
    """Create or upgrade the database schema (safe to run again)."""
    from webapp.schema import init_schema

    click.echo(f"Database ready (schema version {init_schema()}).")


@click.command("create-account")
@click.argument("name")
@click.option("--region", default="US", show_default=True, help="Default phone region.")
@click.option("--day-first", is_flag=True, help="Read slashed dates day first (DD/MM/YYYY).")
@with_appcontext
def create_account_command(name, region, day_first):
    """Create an account (a brand)."""
    from webapp.accounts import create_account

    if Account.get_or_none(Account.name == name):
        raise click.UsageError(f"An account named {name!r} already exists.")
    account = create_account(name, region, day_first)
    click.echo(f"Account {account.name} created (id {account.id}).")


@click.command("create-user")
@click.argument("email")
@click.option("--account", "account_name", required=True)
@click.option("--role", type=click.Choice([Membership.OWNER, Membership.STAFF]), default=Membership.OWNER)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def create_user_command(email, account_name, role, password):
    """Create a user (or add an existing one) in an account."""
    from webapp.accounts import create_user

    user = create_user(email, password, _account(account_name), role)
    click.echo(f"User {user.email} is {role} of {account_name}.")


@click.command("seed-demo")
@with_appcontext
def seed_demo_command():
    """Create a demo account and owner when there are no users yet, and say how to sign in."""
    from webapp.accounts import create_account, create_user

    if User.select().exists():
        click.echo("Sign in with your existing user.")
        return
    password = secrets.token_urlsafe(9)
    account = Account.get_or_none(Account.name == "Demo Dispensary") or create_account("Demo Dispensary")
    create_user("owner@example.com", password, account, Membership.OWNER)
    click.echo(f"Demo owner created. Sign in as owner@example.com with password: {password}")


@click.command("expire-drafts")
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="Remove drafts untouched for this many days (default: the workers' 7).")
@with_appcontext
def expire_drafts_command(days):
    """Remove unfinished imports nobody touched for days, with their stored files (workers do this on their own)."""
    from webapp.importer import drafts
    from webapp.words import counted

    removed = drafts.expire(drafts.DRAFT_DAYS if days is None else days)
    click.echo(f"Removed {counted(len(removed), 'unfinished import')}"
               + (f": {', '.join(f'#{i}' for i in removed)}." if removed else "."))


COMMANDS = [init_db_command, create_account_command, create_user_command, seed_demo_command, expire_drafts_command]


def register_commands(app):
    """Attach the project's commands to app.cli (and so to `flask` and `personas`)."""
    from webapp import cli_import

    for command in COMMANDS + cli_import.COMMANDS:
        app.cli.add_command(command)
