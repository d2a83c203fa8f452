"""Sign-in over the API: SMS code, WeChat and Alipay (sandbox in demo mode), tokens and sign-out."""

from __future__ import annotations

import datetime as dt

import pytest
from api_helpers import ApiClient, error_code
from django.test import override_settings
from factories import make_phone

from yuyue.accounts import services
from yuyue.accounts.models import ApiToken, EndUser, LoginCode
from yuyue.core import personal, timeutil
from yuyue.integrations.sms import ConsoleSmsBackend

pytestmark = pytest.mark.django_db


def last_code(phone: str) -> str:
    message = ConsoleSmsBackend.last_for(phone)
    assert message is not None
    return message.params["code"]


def test_otp_then_login_gives_a_working_token(anon: ApiClient):
    phone = make_phone()
    response = anon.post("/auth/otp", {"phone": phone})
    assert response.status_code == 202
    assert response.json() == {"expires_in": 300, "resend_after": 60}

    login = anon.post("/auth/login", {"phone": phone, "code": last_code(phone)})
    assert login.status_code == 200
    body = login.json()
    assert body["user"]["phone_masked"] == personal.mask_phone(phone)
    assert EndUser.objects.get(pk=body["user"]["id"]).phone == phone
    me = ApiClient(body["token"]).get("/me")
    assert me.status_code == 200 and me.json()["id"] == body["user"]["id"]


def test_console_backend_logs_the_code_for_the_demo(anon: ApiClient, caplog):
    phone = make_phone()
    with caplog.at_level("WARNING", logger="yuyue.sms"):
        anon.post("/auth/otp", {"phone": phone})
    assert f"验证码 {last_code(phone)}" in caplog.text
    assert phone not in caplog.text  # the phone is masked in the log


def test_the_code_is_stored_hashed_only(anon: ApiClient):
    phone = make_phone()
    anon.post("/auth/otp", {"phone": phone})
    row = LoginCode.objects.get(phone_hash=personal.phone_hash(phone))
    assert last_code(phone) not in row.code_hash and len(row.code_hash) == 64


def test_invalid_phone_is_refused_with_a_field_error(anon: ApiClient):
    response = anon.post("/auth/otp", {"phone": "12345"})
    assert response.status_code == 422
    assert error_code(response) == "invalid"
    assert "phone" in response.json()["error"]["fields"]


def test_missing_body_field_is_invalid_not_a_crash(anon: ApiClient):
    response = anon.post("/auth/login", {"phone": make_phone()})
    assert response.status_code == 422 and "code" in response.json()["error"]["fields"]


def test_asking_again_within_a_minute_is_rate_limited(anon: ApiClient):
    phone = make_phone()
    anon.post("/auth/otp", {"phone": phone})
    again = anon.post("/auth/otp", {"phone": phone})
    assert again.status_code == 429 and error_code(again) == "rate_limited"
    assert 1 <= int(again["Retry-After"]) <= 60


def test_a_new_code_after_the_wait_replaces_the_old_one():
    phone = make_phone()
    now = timeutil.now()
    services.request_login_code(phone, ip="10.0.0.1", now=now)
    first = last_code(phone)
    services.request_login_code(phone, ip="10.0.0.1", now=now + dt.timedelta(seconds=61))
    second = last_code(phone)
    later = now + dt.timedelta(seconds=62)
    if first != second:
        with pytest.raises(services.DomainError):
            services.login_with_code(phone, first, now=later)
    assert services.login_with_code(phone, second, now=later).phone == phone


@override_settings(RATE_LOGIN_CODE_PHONE="2/3600", LOGIN_CODE_RESEND_SECONDS=0)
def test_per_phone_hourly_limit():
    phone = make_phone()
    services.request_login_code(phone, ip="10.0.0.2")
    services.request_login_code(phone, ip="10.0.0.3")
    with pytest.raises(services.DomainError, match=r"^rate_limited"):
        services.request_login_code(phone, ip="10.0.0.4")


@override_settings(RATE_LOGIN_CODE_IP="3/3600")
def test_per_ip_limit_counts_across_phones(anon: ApiClient):
    statuses = [anon.post("/auth/otp", {"phone": make_phone()}).status_code for _ in range(4)]
    assert statuses == [202, 202, 202, 429]


@override_settings(RATE_LOGIN_CODE_IP="1/3600", CLIENT_IP_HEADER="X-Forwarded-For")
def test_behind_a_proxy_the_forwarded_address_is_limited(anon: ApiClient):
    first = anon.post("/auth/otp", {"phone": make_phone()}, headers={"X-Forwarded-For": "1.1.1.1, 10.0.0.9"})
    other = anon.post("/auth/otp", {"phone": make_phone()}, headers={"X-Forwarded-For": "10.0.0.8"})
    same = anon.post("/auth/otp", {"phone": make_phone()}, headers={"X-Forwarded-For": "2.2.2.2, 10.0.0.9"})
    assert [first.status_code, other.status_code, same.status_code] == [202, 202, 429]


def test_wrong_code_is_invalid_and_counts_an_attempt(anon: ApiClient):
    phone = make_phone()
    anon.post("/auth/otp", {"phone": phone})
    wrong = "000000" if last_code(phone) != "000000" else "111111"
    response = anon.post("/auth/login", {"phone": phone, "code": wrong})
    assert response.status_code == 422 and "code" in response.json()["error"]["fields"]
    assert LoginCode.objects.get(phone_hash=personal.phone_hash(phone)).attempts == 1


def test_after_five_wrong_codes_even_the_right_one_fails(anon: ApiClient):
    phone = make_phone()
    anon.post("/auth/otp", {"phone": phone})
    right = last_code(phone)
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(5):
        anon.post("/auth/login", {"phone": phone, "code": wrong})
    response = anon.post("/auth/login", {"phone": phone, "code": right})
    assert response.status_code == 422 and error_code(response) == "invalid"


def test_a_code_works_once(anon: ApiClient):
    phone = make_phone()
    anon.post("/auth/otp", {"phone": phone})
    code = last_code(phone)
    assert anon.post("/auth/login", {"phone": phone, "code": code}).status_code == 200
    assert anon.post("/auth/login", {"phone": phone, "code": code}).status_code == 422


def test_an_expired_code_fails():
    phone = make_phone()
    now = timeutil.now()
    services.request_login_code(phone, ip="10.0.0.5", now=now)
    with pytest.raises(services.DomainError, match=r"^invalid"):
        services.login_with_code(phone, last_code(phone), now=now + dt.timedelta(seconds=301))


def test_malformed_code_is_invalid_without_counting(anon: ApiClient):
    phone = make_phone()
    anon.post("/auth/otp", {"phone": phone})
    response = anon.post("/auth/login", {"phone": phone, "code": "12ab"})
    assert response.status_code == 422
    assert LoginCode.objects.get(phone_hash=personal.phone_hash(phone)).attempts == 0


def test_login_without_any_code_requested_is_invalid(anon: ApiClient):
    response = anon.post("/auth/login", {"phone": make_phone(), "code": "123456"})
    assert response.status_code == 422 and "code" in response.json()["error"]["fields"]


def test_disabled_account_is_forbidden(anon: ApiClient):
    phone = make_phone()
    services.get_or_create_user_by_phone(phone)
    EndUser.objects.update(is_active=False)
    anon.post("/auth/otp", {"phone": phone})
    response = anon.post("/auth/login", {"phone": phone, "code": last_code(phone)})
    assert response.status_code == 403 and error_code(response) == "forbidden"


def test_wechat_demo_code_signs_in_the_same_user_each_time(anon: ApiClient):
    first = anon.post("/auth/wechat", {"code": "demo-alice"})
    second = anon.post("/auth/wechat", {"code": "demo-alice"})
    other = anon.post("/auth/wechat", {"code": "demo-bob"})
    assert first.status_code == second.status_code == other.status_code == 200
    assert first.json()["user"]["id"] == second.json()["user"]["id"] != other.json()["user"]["id"]
    assert EndUser.objects.get(pk=first.json()["user"]["id"]).wechat_openid.startswith("sandbox-")


def test_wechat_bad_code_is_invalid(anon: ApiClient):
    response = anon.post("/auth/wechat", {"code": "not-a-demo-code"})
    assert response.status_code == 422 and "code" in response.json()["error"]["fields"]


def test_alipay_demo_code_signs_in(anon: ApiClient):
    response = anon.post("/auth/alipay", {"code": "demo-carol"})
    assert response.status_code == 200
    user = EndUser.objects.get(pk=response.json()["user"]["id"])
    assert user.alipay_user_id.startswith("2088") and len(user.alipay_user_id) == 16
    assert anon.post("/auth/alipay", {"code": "demo-carol"}).json()["user"]["id"] == user.pk


def test_alipay_bad_code_is_invalid(anon: ApiClient):
    response = anon.post("/auth/alipay", {"code": "nope"})
    assert response.status_code == 422 and "code" in response.json()["error"]["fields"]


def test_logout_revokes_the_token(api: ApiClient):
    assert api.get("/me").status_code == 200
    assert api.post("/auth/logout").status_code == 204
    response = api.get("/me")
    assert response.status_code == 401 and error_code(response) == "unauthorized"
    assert ApiToken.objects.get().revoked_at is not None


def test_no_token_or_a_wrong_token_is_unauthorized(anon: ApiClient):
    assert error_code(anon.get("/me")) == "unauthorized"
    assert anon.get("/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert anon.post("/auth/logout").status_code == 401


def test_an_expired_token_is_unauthorized(user):
    token = services.issue_token(user=user, ttl=dt.timedelta(seconds=-1))
    assert ApiClient(token).get("/me").status_code == 401


def test_a_staff_token_is_forbidden_on_customer_endpoints(django_user_model):
    staff = django_user_model.objects.create_user("desk", password="x")
    response = ApiClient(services.issue_token(staff_user=staff)).get("/me/people")
    assert response.status_code == 403 and error_code(response) == "forbidden"


def test_login_tokens_expire_after_the_configured_days(anon: ApiClient):
    response = anon.post("/auth/wechat", {"code": "demo-dave"})
    token = ApiToken.objects.get(user_id=response.json()["user"]["id"])
    assert token.expires_at is not None
    assert dt.timedelta(days=29) < token.expires_at - timeutil.now() <= dt.timedelta(days=30)


def test_errors_are_in_chinese_by_default_and_english_on_request(anon: ApiClient):
    phone = make_phone()
    anon.post("/auth/otp", {"phone": phone})
    wrong = "000000" if last_code(phone) != "000000" else "111111"
    chinese = anon.post("/auth/login", {"phone": phone, "code": wrong}).json()["error"]
    assert chinese["fields"]["code"] == "验证码不正确。"
    assert chinese["message"] == "请检查标红的字段。"
    english = anon.post("/auth/login", {"phone": phone, "code": wrong}, headers={"Accept-Language": "en"}).json()
    assert english["error"]["fields"]["code"] == "The code is not correct."


@override_settings(SIGN_IN_SANDBOX=False)
def test_without_demo_mode_unconfigured_mini_programs_are_unavailable(anon: ApiClient):
    for path in ("/auth/wechat", "/auth/alipay"):
        response = anon.post(path, {"code": "demo-eve"})
        assert response.status_code == 503 and error_code(response) == "unavailable"
    assert not EndUser.objects.exists()


def test_sign_in_settings_are_checked_at_start_up():
    from django.core.exceptions import ImproperlyConfigured

    from yuyue import settings as project_settings

    original = project_settings.RATE_BOOKING_USER
    try:
        project_settings.RATE_BOOKING_USER = "ten per minute"
        with pytest.raises(ImproperlyConfigured):
            project_settings._check_sign_in_settings()
    finally:
        project_settings.RATE_BOOKING_USER = original
    project_settings._check_sign_in_settings()
