"""The account commands: init-db, create-account, create-user, seed-demo."""
import re

from webapp.accounts import authenticate
from webapp.models import Account, Membership, SchemaVersion, User
from webapp.schema import CURRENT_VERSION


def test_init_db_twice_is_idempotent(runner, account_a):
    first = runner.invoke(args=["init-db"])
    second = runner.invoke(args=["init-db"])
    assert first.exit_code == 0 and second.exit_code == 0
    assert f"schema version {CURRENT_VERSION}" in first.output
    assert first.output == second.output
    assert SchemaVersion.select().count() == 1
    assert Account.select().count() == 1  # data survives


def test_create_account(runner):
    result = runner.invoke(args=["create-account", "Green Leaf", "--region", "ca", "--day-first"])
    assert result.exit_code == 0, result.output
    account = Account.get(Account.name == "Green Leaf")
    assert (account.phone_region, account.day_first) == ("CA", True)
    assert f"id {account.id}" in result.output
    again = runner.invoke(args=["create-account", "Green Leaf"])
    assert again.exit_code != 0 and "already exists" in again.output
    assert Account.select().count() == 1


def test_create_user_with_password_option(runner, account_a):
    result = runner.invoke(args=["create-user", "Ann@Example.com", "--account", "Alpha", "--password", "s3cret"])
    assert result.exit_code == 0, result.output
    user = User.get(User.email == "ann@example.com")
    assert user.password_hash != "s3cret"
    assert authenticate("ann@example.com", "s3cret") == user
    assert Membership.get(Membership.user == user).role == Membership.OWNER


def test_create_user_with_password_prompt(runner, account_a):
    result = runner.invoke(args=["create-user", "staff@example.com", "--account", "Alpha", "--role", "staff"],
                           input="typed-pw\ntyped-pw\n")
    assert result.exit_code == 0, result.output
    assert "typed-pw" not in result.output  # hidden input
    assert authenticate("staff@example.com", "typed-pw") is not None
    user = User.get(User.email == "staff@example.com")
    assert Membership.get(Membership.user == user, Membership.account == account_a).role == Membership.STAFF


def test_create_user_in_unknown_account_fails(runner):
    result = runner.invoke(args=["create-user", "x@example.com", "--account", "Nope", "--password", "pw"])
    assert result.exit_code != 0 and "No account named 'Nope'" in result.output
    assert User.select().count() == 0


def test_seed_demo_creates_once_and_the_password_signs_in(runner, client, login):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    password = re.search(r"password: (\S+)", first.output).group(1)
    assert User.select().count() == 1 and Account.select().count() == 1
    response = login(client, "owner@example.com", password)
    assert response.status_code == 302
    assert "<h1>Personas</h1>" in client.get("/personas").get_data(as_text=True)

    second = runner.invoke(args=["seed-demo"])
    assert "Sign in with your existing user." in second.output
    assert User.select().count() == 1 and Account.select().count() == 1
