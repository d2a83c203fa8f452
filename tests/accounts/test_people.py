"""Adding people to an account: IDs checked, children need a guardian, tokens revocable."""

from __future__ import annotations

import datetime as dt

import pytest
from factories import make_id_number, make_merchant, make_person, make_user

from yuyue.accounts import services
from yuyue.core.errors import DomainError

pytestmark = pytest.mark.django_db


def test_birth_date_comes_from_the_id_number():
    person = make_person(id_number=make_id_number(dt.date(1972, 2, 29)))
    assert person.birth_date == dt.date(1972, 2, 29)


def test_child_under_fourteen_needs_a_guardian():
    user = make_user()
    with pytest.raises(DomainError) as caught:
        services.add_person(owner=user, name="小明", relation="child", id_number=make_id_number(dt.date(2016, 1, 1)))
    assert "guardian_id" in caught.value.fields


def test_guardian_must_be_an_adult_of_the_same_account():
    user = make_user()
    stranger = make_person()
    with pytest.raises(DomainError) as caught:
        services.add_person(
            owner=user,
            name="小红",
            relation="child",
            id_number=make_id_number(dt.date(2016, 1, 1)),
            guardian_id=stranger.pk,
        )
    assert "guardian_id" in caught.value.fields


def test_child_with_guardian_is_added():
    user = make_user()
    mother = make_person(owner=user)
    child = services.add_person(
        owner=user, name="小红", relation="child", id_number=make_id_number(dt.date(2016, 1, 1)), guardian_id=mother.pk
    )
    assert child.guardian == mother


def test_same_id_twice_in_one_account_is_refused():
    person = make_person()
    with pytest.raises(DomainError) as caught:
        services.add_person(owner=person.owner, name="重复", id_number=person.id_number)
    assert "id_number" in caught.value.fields


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(DomainError) as caught:
        services.add_person(owner=make_user(), name="", relation="cousin", id_number="123", phone="456")
    assert set(caught.value.fields) == {"name", "relation", "id_number", "phone"}


def test_removed_person_can_no_longer_be_booked_but_can_be_added_again():
    person = make_person()
    services.remove_person(owner=person.owner, person_id=person.pk)
    again = services.add_person(owner=person.owner, name=person.name, id_number=person.id_number)
    assert again.pk != person.pk


def test_one_account_per_phone():
    assert make_user("13912345678") == make_user("+86 139 1234 5678")


def test_tokens_identify_and_can_be_revoked():
    user = make_user()
    token = services.issue_token(user=user)
    owner = services.token_owner(token)
    assert owner is not None and owner.user == user
    assert services.revoke_token(token)
    assert services.token_owner(token) is None


def test_expired_tokens_do_not_work():
    token = services.issue_token(user=make_user(), ttl=dt.timedelta(seconds=-1))
    assert services.token_owner(token) is None


def test_points_move_with_their_reason():
    user, merchant = make_user(), make_merchant()
    services.change_points(user=user, merchant=merchant, delta=30, reason="完成课程")
    entry = services.change_points(user=user, merchant=merchant, delta=-10, reason="迟取消")
    user.refresh_from_db()
    assert (user.points_balance, entry.balance_after) == (20, 20)


def test_many_phones_sign_in_at_once_in_order():
    existing = make_user("13900000002")
    users = services.users_for_phones(["13900000001", "+86 139 0000 0002", "13900000003", "13900000001"])
    assert users[1] == existing and users[0] == users[3]
    assert [u.phone for u in users] == ["13900000001", "13900000002", "13900000003", "13900000001"]
    tokens = services.issue_tokens(users)
    assert [services.token_owner(t).user for t in tokens] == users
