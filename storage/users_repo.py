"""Staff users, customers, their chat identities and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import ApiTokenRow, ChatIdentityRow, UserRow

ROLES = ("admin", "manager", "finance", "supply_chain", "customer")
USERS, TOKENS, IDENTITIES = UserRow.__table__, ApiTokenRow.__table__, ChatIdentityRow.__table__


class UserError(ValueError):
    """A refused user operation, phrased for the person at the terminal."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: str
    regions: tuple[str, ...]
    phone: str | None
    email: str | None = None
    supervisor_id: int | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _user(row: Any) -> User:
    return User(row.id, row.name, row.role, tuple(row.regions or ()), row.phone, row.email, row.supervisor_id)


class SqlUsers:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, name: str, role: str, regions: list[str], phone: str | None, email: str | None,
                  now: datetime, supervisor: str | None = None) -> tuple[User, str]:
        """Create a user and its first API token; returns the token in clear text, once."""
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        if role == "manager" and not regions:
            raise UserError("a manager needs at least one --region")
        token = "oh_" + secrets.token_urlsafe(24)
        async with self.engine.begin() as conn:
            supervisor_id = None
            if supervisor:
                sup = (await conn.execute(select(USERS.c.id).where(USERS.c.name == supervisor))).first()
                if sup is None:
                    raise UserError(f"no user named {supervisor!r} to be the supervisor")
                supervisor_id = sup.id
            try:
                res = await conn.execute(USERS.insert().values(
                    name=name, role=role, regions=regions, phone=phone, email=email, created_at=now, active=True,
                    supervisor_id=supervisor_id,
                ))
            except IntegrityError:
                raise UserError(f"a user named {name!r} already exists") from None
            user_id = res.inserted_primary_key[0]
            await conn.execute(TOKENS.insert().values(user_id=user_id, token_hash=hash_token(token), created_at=now))
        return User(user_id, name, role, tuple(regions), phone, email, supervisor_id), token

    async def list(self) -> list[tuple[User, list[tuple[str, str]]]]:
        async with self.engine.connect() as conn:
            users = (await conn.execute(select(USERS).order_by(USERS.c.id))).all()
            ids = (await conn.execute(select(IDENTITIES))).all()
        by_user: dict[int, list[tuple[str, str]]] = {}
        for i in ids:
            by_user.setdefault(i.user_id, []).append((i.platform, i.external_id))
        return [(_user(u), by_user.get(u.id, [])) for u in users]

    async def link(self, name: str, platform: str, external_id: str, now: datetime) -> User:
        """Tie a chat identity to a user; an identity maps to exactly one user, so relinking moves it."""
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(USERS).where(USERS.c.name == name))).first()
            if row is None:
                raise UserError(f"no user named {name!r}")
            await conn.execute(IDENTITIES.delete().where(
                IDENTITIES.c.platform == platform, IDENTITIES.c.external_id == external_id))
            await conn.execute(IDENTITIES.insert().values(
                user_id=row.id, platform=platform, external_id=external_id, chat_id=external_id, linked_at=now))
        return _user(row)

    async def set_quiet_hours(self, name: str, spec: str | None) -> None:
        """Store NAME's quiet hours (`22:00-08:00`, checked by engine/quiet.py) or clear them (None)."""
        async with self.engine.begin() as conn:
            done = await conn.execute(USERS.update().where(USERS.c.name == name).values(quiet_hours=spec))
        if done.rowcount != 1:
            raise UserError(f"no user named {name!r}")

    async def by_name(self, name: str) -> User:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(USERS).where(USERS.c.name == name))).first()
        if row is None:
            raise UserError(f"no user named {name!r}")
        return _user(row)

    async def by_token(self, token: str) -> User | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(
                select(USERS).join(TOKENS, TOKENS.c.user_id == USERS.c.id)
                .where(TOKENS.c.token_hash == hash_token(token), USERS.c.active.is_(True))
            )).first()
        return _user(row) if row else None
