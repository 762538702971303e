"""Accounts, users and memberships: the few writes the CLI and sign-in need."""
import functools

from werkzeug.security import check_password_hash, generate_password_hash

from webapp import sessions
from webapp.db import db
from webapp.models import Account, Membership, User

# Werkzeug's default (scrypt). Tests swap in a cheap method: hashing is most of a sign-in's time.
PASSWORD_METHOD = "scrypt"


def hash_password(password: str) -> str:
    """A salted hash of password."""
    return generate_password_hash(password, method=PASSWORD_METHOD)


@functools.cache
def _dummy_hash(method: str) -> str:
    """A hash to check unknown emails against, made once per method."""
    return generate_password_hash("no such user", method=method)


def create_account(name: str, region: str = "US", day_first: bool = False) -> Account:
    """Create an account (brand); its name is unique."""
    return Account.create(name=name.strip(), phone_region=region.upper(), day_first=day_first)


def create_user(email: str, password: str, account: Account, role: str = Membership.OWNER) -> User:
    """Create the user if new (else keep it) and give it role in account."""
    with db.atomic():
        user = User.get_or_none(User.email == email.strip().lower())
        if user is None:
            user = User.create(email=email.strip().lower(), password_hash=hash_password(password))
        elif password:
            set_password(user, password)
        Membership.insert(user=user, account=account, role=role).on_conflict(
            conflict_target=[Membership.user, Membership.account], update={Membership.role: role}
        ).execute()
    return user


def set_password(user: User, password: str) -> None:
    """Give user a new password and end every session they have open (any saved cookie stops working)."""
    user.password_hash = hash_password(password)
    with db.atomic():
        User.update(password_hash=user.password_hash).where(User.id == user.id).execute()
        sessions.end_all(user)


def authenticate(email: str, password: str) -> User | None:
    """The user with this email and password, or None."""
    user = User.get_or_none(User.email == (email or "").strip().lower())
    # Hash even for an unknown email, so the response time does not tell which emails exist.
    stored = user.password_hash if user else _dummy_hash(PASSWORD_METHOD)
    return user if check_password_hash(stored, password or "") and user else None


def memberships_of(user: User) -> list[Membership]:
    """The user's memberships with their accounts loaded, by account name."""
    return list(
        Membership.select(Membership, Account)
        .join(Account)
        .where(Membership.user == user)
        .order_by(Account.name)
    )
