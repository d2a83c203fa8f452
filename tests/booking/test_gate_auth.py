"""Bearer tokens cached in Redis for the rush path: fast, and a revocation still works at once."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from factories import make_user
from test_gate import GATE_REDIS_URL, _redis

from yuyue.accounts import services as accounts
from yuyue.accounts import tokencache
from yuyue.accounts.models import ApiToken
from yuyue.core import timeutil

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def token_cache():
    try:
        _redis().ping()
    except Exception as exc:
        pytest.skip(f"Redis not reachable at {GATE_REDIS_URL}: {exc}")
    with override_settings(REDIS_URL=GATE_REDIS_URL, TOKEN_CACHE_SECONDS=30):
        yield


def lookups(raw: str) -> tuple[int | None, int]:
    """Whose token it is (None when refused) and how many statements finding out took."""
    with CaptureQueriesContext(connection) as queries:
        token = accounts.token_owner(raw)
    return (token.user_id if token else None), len(queries.captured_queries)


def test_a_cached_token_needs_no_query_and_is_refused_at_once_when_revoked(token_cache):
    user = make_user()
    raw = accounts.issue_token(user=user)
    assert lookups(raw) == (user.pk, 0)  # cached when issued
    assert accounts.revoke_token(raw)
    assert lookups(raw) == (None, 1)


def test_a_disabled_account_is_signed_out_through_the_cache(token_cache):
    user = make_user()
    raw = accounts.issue_tokens([user])[0]
    assert lookups(raw) == (user.pk, 0)
    user.is_active = False
    user.save()
    token = accounts.token_owner(raw)
    assert token is not None and not token.user.is_active  # read again: the API refuses it


def test_tokens_revoked_in_bulk_and_expired_ones_are_refused(token_cache):
    user = make_user()
    short = accounts.issue_token(user=user, ttl=dt.timedelta(minutes=5))
    other = accounts.issue_token(user=user)
    assert lookups(other) == (user.pk, 0)
    ApiToken.objects.filter(user=user).update(revoked_at=timeutil.now())  # no signals here…
    tokencache.forget_user(user_id=user.pk)  # …so whoever does this says so
    assert lookups(other) == (None, 1)

    ApiToken.objects.filter(user=user).update(revoked_at=None, expires_at=timeutil.now() - dt.timedelta(seconds=1))
    tokencache.forget_user(user_id=user.pk)
    accounts.token_owner(short)  # cached again, with its expiry
    assert lookups(short) == (None, 0)  # expired: refused from the cache too


def test_with_redis_unreachable_tokens_are_read_from_the_database():
    user = make_user()
    raw = accounts.issue_token(user=user)
    with override_settings(REDIS_URL="redis://127.0.0.1:1/2"):
        assert lookups(raw) == (user.pk, 1)
        assert lookups(raw) == (user.pk, 1)
    tokencache._down_until = 0.0


def test_the_cache_keeps_ids_and_the_active_flag_only_and_the_rest_is_read_when_used(token_cache):
    user = make_user(phone="13912345678")
    raw = accounts.issue_token(user=user)
    digest = accounts._token_hash(raw)
    entry = _redis().get(tokencache._key(digest))
    assert b"13912345678" not in entry and b"phone" not in entry  # no personal data in Redis
    assert set(json.loads(entry)) == {"id", "key_hash", "user_id", "staff_user_id", "expires_at", "revoked_at", "owner"}
    with CaptureQueriesContext(connection) as queries:
        token = accounts.token_owner(raw)
        assert token.user.pk == user.pk and token.user.is_active
    assert len(queries.captured_queries) == 0
    with CaptureQueriesContext(connection) as queries:
        assert token.user.phone == "13912345678"  # deferred: read (and decrypted) on first use
    assert len(queries.captured_queries) == 1
