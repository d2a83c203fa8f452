"""The `yuyue` command, called in-process: tokens, slots, keys, and clear errors."""

from __future__ import annotations

import os
import sys
import threading

import pytest
from factories import make_offering, make_schedule

from yuyue import cli
from yuyue.accounts.services import token_owner
from yuyue.core import crypto
from yuyue.scheduling.models import Slot
from yuyue.tenants.models import Role, Staff

pytestmark = pytest.mark.django_db(transaction=True)


def test_token_prints_one_token_per_phone_in_order(capsys):
    assert cli.main(["token", "13800138000", "13900139000", "13800138000"]) == 0
    tokens = capsys.readouterr().out.split()
    owners = [token_owner(t).user for t in tokens]
    assert [o.phone for o in owners] == ["13800138000", "13900139000", "13800138000"]
    assert owners[0] == owners[2]


def test_token_refuses_a_bad_phone_and_issues_nothing(capsys):
    assert cli.main(["token", "13800138000", "12345"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "12345" in captured.err


def test_staff_token(capsys, django_user_model):
    user = django_user_model.objects.create_user("front-desk")
    Staff.objects.create(user=user, merchant=make_offering().merchant, role=Role.FRONT_DESK)
    assert cli.main(["token", "--staff", "front-desk"]) == 0
    assert token_owner(capsys.readouterr().out.strip()).staff_user == user


def test_staff_token_for_someone_without_a_staff_role_is_refused(capsys, django_user_model):
    django_user_model.objects.create_user("visitor")
    assert cli.main(["token", "--staff", "visitor"]) == 2
    assert "visitor" in capsys.readouterr().err


def test_slots_generate_is_idempotent(capsys):
    make_schedule(capacity=5)
    assert cli.main(["slots", "generate", "--days", "7"]) == 0
    assert cli.main(["slots", "generate", "--days", "7"]) == 0
    out = capsys.readouterr().out
    assert Slot.objects.count() == 7
    assert "7" in out.splitlines()[0] and "0" in out.splitlines()[1]


def test_keys_new_prints_a_usable_key(capsys):
    assert cli.main(["keys", "new"]) == 0
    key = capsys.readouterr().out.strip()
    assert len(crypto._decode_key(key)) == 32


@pytest.mark.skipif(sys.platform != "linux", reason="a thread has its own nice value on Linux only")
def test_background_work_runs_at_the_lowest_priority_and_requests_keep_theirs():
    seen: dict[str, int] = {}

    def background() -> None:
        cli._yield_cpu_to_requests()
        seen["background"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert seen["background"] == cli.BACKGROUND_NICENESS == 19
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # this thread: unchanged
