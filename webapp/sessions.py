"""Signed-in sessions held server-side: sign-out and a password change end every copy of a session cookie.

The session cookie is Flask's signed cookie, so a copy of it (saved by hand, or a second cookie a browser
kept under an older cookie setting) stays a valid signature for as long as the cookie lives. What makes it
open a session is its token's row in user_session: sign-in makes one, sign-out deletes it, a password change
deletes all of the user's, and a row older than the session lifetime no longer counts.
"""
import datetime
import hashlib
import secrets

from webapp.models import User, UserSession, utcnow

TOKEN_KEY = "sid"  # the session cookie's key holding the token


def _key(token: str) -> str:
    """The row's key: the token's SHA-256, so the table alone (a backup, a dump) opens no session."""
    return hashlib.sha256(token.encode()).hexdigest()


def start(user: User, lifetime: datetime.timedelta) -> str:
    """Open a session for user and return its token (for the cookie); forget every expired one."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    # A few rows per sign-in of the last month: scanning them all here keeps the table that small.
    UserSession.delete().where(UserSession.created_at < now - lifetime).execute()
    UserSession.create(key=_key(token), user=user, created_at=now)
    return token


def user_of(user_id, token, lifetime: datetime.timedelta) -> User | None:
    """The user whose open session this is (one query), else None: ended, expired, or not theirs."""
    if not isinstance(token, str) or not token or not isinstance(user_id, int):
        return None
    return (User.select().join(UserSession)
            .where((UserSession.key == _key(token)) & (User.id == user_id)
                   & (UserSession.created_at >= utcnow() - lifetime))
            .first())


def end(token) -> None:
    """End one session (sign-out): every copy of its cookie is worthless from now on."""
    if isinstance(token, str) and token:
        UserSession.delete().where(UserSession.key == _key(token)).execute()


def end_all(user: User) -> int:
    """End every session of user (a password change); returns how many were open."""
    return UserSession.delete().where(UserSession.user == user).execute()
