"""WeChat code2session and Alipay oauth.token against local servers that check what is sent."""

from __future__ import annotations

import base64
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.test import override_settings
from fake_http import Answer, Received, fake_server

from yuyue.accounts import services
from yuyue.accounts.models import EndUser
from yuyue.core.errors import DomainError
from yuyue.integrations import alipay, wechat

# --- WeChat -----------------------------------------------------------------------------------------

APPID, APPSECRET = "wx1234567890abcdef", "0123456789abcdef0123456789abcdef"


def wechat_server(request: Received) -> Answer:
    q = request.query
    if request.path != "/sns/jscode2session" or q.get("grant_type") != "authorization_code":
        return Answer(200, json.dumps({"errcode": 40013, "errmsg": "invalid appid"}), "text/plain")
    if q.get("appid") != APPID or q.get("secret") != APPSECRET:
        return Answer(200, json.dumps({"errcode": 40125, "errmsg": "invalid appsecret"}), "text/plain")
    answers = {
        "used": {"errcode": 40163, "errmsg": "code been used"},
        "bad": {"errcode": 40029, "errmsg": "invalid code"},
        "busy": {"errcode": -1, "errmsg": "system error"},
        "fast": {"errcode": 45011, "errmsg": "api minute-quota reach limit"},
        "risky": {"errcode": 40226, "errmsg": "high risk user"},
    }
    body = answers.get(q["js_code"], {"openid": f"o-{q['js_code']}", "session_key": "c2Vzc2lvbg==", "unionid": "u1"})
    return Answer(200, json.dumps(body), "text/plain")  # WeChat's own content type


def mini_program(url: str, secret: str = APPSECRET) -> wechat.WeChatMiniProgram:
    return wechat.WeChatMiniProgram(app_id=APPID, app_secret=secret, base_url=url)


def test_code2session_sends_the_documented_query_and_reads_the_openid():
    with fake_server(wechat_server) as server:
        session = mini_program(server.url).code2session("081abcDEF")
    assert (session.openid, session.unionid, session.session_key) == ("o-081abcDEF", "u1", "c2Vzc2lvbg==")
    (request,) = server.received
    assert request.method == "GET" and request.path == "/sns/jscode2session"
    assert request.query == {
        "appid": APPID,
        "secret": APPSECRET,
        "js_code": "081abcDEF",
        "grant_type": "authorization_code",
    }


@pytest.mark.parametrize(
    ("js_code", "code"),
    [
        ("bad", "invalid"),
        ("used", "invalid"),
        ("fast", "rate_limited"),
        ("risky", "forbidden"),
        ("busy", "unavailable"),
    ],
)
def test_wechat_errcodes_become_refusals(js_code, code):
    with fake_server(wechat_server) as server, pytest.raises(DomainError) as refusal:
        mini_program(server.url).code2session(js_code)
    assert refusal.value.code == code


def test_a_wrong_app_secret_is_our_problem_not_the_users():
    with fake_server(wechat_server) as server, pytest.raises(DomainError) as refusal:
        mini_program(server.url, secret="wrong").code2session("abc")
    assert refusal.value.code == "unavailable"


def test_wechat_outage_is_unavailable():
    down = Answer(503, "upstream down", "text/plain")
    with fake_server(lambda r: down) as server, pytest.raises(DomainError, match=r"^unavailable"):
        mini_program(server.url).code2session("abc")


@pytest.mark.django_db
def test_login_with_wechat_uses_the_configured_app():
    with fake_server(wechat_server) as server:
        configured = override_settings(WECHAT_APP_ID=APPID, WECHAT_APP_SECRET=APPSECRET, WECHAT_API_BASE=server.url)
        with configured:
            user = services.login_with_wechat("0x1")
            again = services.login_with_wechat("0x1")
    assert user.pk == again.pk and user.wechat_openid == "o-0x1"
    assert EndUser.objects.count() == 1


# --- Alipay -----------------------------------------------------------------------------------------

ALIPAY_APP_ID = "2021004100000001"


def pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    else:
        raw = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return raw.decode()


@pytest.fixture(scope="module")
def keys() -> dict[str, rsa.RSAPrivateKey]:
    return {name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in ("app", "alipay", "other")}


class AlipayGateway:
    """Checks the app's RSA2 signature as Alipay documents it and signs answers with 'alipay' (or another) key."""

    def __init__(self, keys: dict[str, rsa.RSAPrivateKey], *, sign_with: str = "alipay", unsigned: bool = False):
        self.keys = keys
        self.sign_with = sign_with
        self.unsigned = unsigned

    def signed(self, node: str, value: dict) -> Answer:
        text = json.dumps(value, ensure_ascii=False)  # with spaces: the sign covers these exact bytes
        body = f'{{"{node}": {text}'
        if not self.unsigned:
            sig = self.keys[self.sign_with].sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
            body += f', "sign": "{base64.b64encode(sig).decode()}"'
        return Answer(200, body + "}", "text/html;charset=utf-8")  # Alipay's gateway content type

    def __call__(self, request: Received) -> Answer:
        params = request.form
        content = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v)
        try:
            self.keys["app"].public_key().verify(
                base64.b64decode(params.get("sign", "")), content.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, ValueError):
            return self.signed(
                "error_response", {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature"}
            )
        if params.get("code") == "expired":
            return self.signed(
                "error_response",
                {
                    "code": "40002",
                    "msg": "Invalid Arguments",
                    "sub_code": "isv.code-invalid",
                    "sub_msg": "授权码code无效",
                },
            )
        return self.signed(
            "alipay_system_oauth_token_response",
            {
                "user_id": "2088102150477652",
                "access_token": "20120823ac6ffaa4d2d84e7384bf983531473993",
                "expires_in": 3600,
            },
        )


def oauth(url: str, keys: dict[str, rsa.RSAPrivateKey]) -> alipay.AlipayOAuth:
    return alipay.AlipayOAuth(
        app_id=ALIPAY_APP_ID,
        app_private_key=keys["app"],
        alipay_public_key=keys["alipay"].public_key(),
        gateway=url + "/gateway.do",
    )


def test_oauth_token_is_rsa2_signed_and_the_answer_verified(keys):
    with fake_server(AlipayGateway(keys)) as server:
        identity = oauth(server.url, keys).identity_for_code("4b203fe6c11548bcabd8da5bb087a83b")
    assert identity.user_id == "2088102150477652" and identity.key == "2088102150477652"
    (request,) = server.received
    params = request.form
    assert request.method == "POST" and request.path == "/gateway.do"
    assert request.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert {k: params[k] for k in ("app_id", "method", "charset", "sign_type", "version", "grant_type", "code")} == {
        "app_id": ALIPAY_APP_ID,
        "method": "alipay.system.oauth.token",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "version": "1.0",
        "grant_type": "authorization_code",
        "code": "4b203fe6c11548bcabd8da5bb087a83b",
    }
    stamp = dt.datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    assert abs(dt.datetime.now(dt.UTC) - stamp) < dt.timedelta(minutes=1)


def test_an_invalid_code_is_a_field_error(keys):
    with fake_server(AlipayGateway(keys)) as server, pytest.raises(DomainError) as refusal:
        oauth(server.url, keys).identity_for_code("expired")
    assert refusal.value.code == "invalid" and "code" in refusal.value.fields


def test_an_answer_signed_by_someone_else_is_refused(keys):
    with fake_server(AlipayGateway(keys, sign_with="other")) as server, pytest.raises(DomainError) as refusal:
        oauth(server.url, keys).identity_for_code("abc")
    assert refusal.value.code == "unavailable"


def test_an_unsigned_success_is_refused(keys):
    with fake_server(AlipayGateway(keys, unsigned=True)) as server, pytest.raises(DomainError) as refusal:
        oauth(server.url, keys).identity_for_code("abc")
    assert refusal.value.code == "unavailable"


def test_a_request_signed_with_the_wrong_app_key_is_refused_by_the_gateway(keys):
    wrong = alipay.AlipayOAuth(
        app_id=ALIPAY_APP_ID, app_private_key=keys["other"], alipay_public_key=keys["alipay"].public_key()
    )
    with fake_server(AlipayGateway(keys)) as server:
        wrong.gateway = server.url + "/gateway.do"
        with pytest.raises(DomainError, match=r"^unavailable"):
            wrong.identity_for_code("abc")
    assert server.received  # the gateway saw it and said no


def test_keys_load_from_pem_or_the_bare_base64_alipay_shows(keys, tmp_path):
    public_pem = pem(keys["alipay"].public_key())
    bare = "".join(line for line in public_pem.splitlines() if "-----" not in line)
    assert alipay.load_public_key(bare).public_numbers() == keys["alipay"].public_key().public_numbers()
    path = tmp_path / "app.pem"
    path.write_text(pem(keys["app"]))
    assert alipay.load_private_key(str(path)).private_numbers() == keys["app"].private_numbers()


@pytest.mark.django_db
def test_login_with_alipay_uses_the_configured_app(keys):
    with (
        fake_server(AlipayGateway(keys)) as server,
        override_settings(
            ALIPAY_APP_ID=ALIPAY_APP_ID,
            ALIPAY_APP_PRIVATE_KEY=pem(keys["app"]),
            ALIPAY_PUBLIC_KEY=pem(keys["alipay"].public_key()),
            ALIPAY_GATEWAY=server.url + "/gateway.do",
        ),
    ):
        user = services.login_with_alipay("auth-code-1")
    assert user.alipay_user_id == "2088102150477652"


@pytest.mark.parametrize(
    "answer",
    ['["not", "an", "object"]', '{"errcode": "abc"}', '{"errcode": null}', "", '{"openid": ""}'],
)
def test_odd_wechat_answers_are_unavailable_not_crashes(answer):
    with fake_server(lambda r: Answer(200, answer, "text/plain")) as server, pytest.raises(DomainError) as refusal:
        mini_program(server.url).code2session("abc")
    assert refusal.value.code == "unavailable"


@pytest.mark.parametrize(
    "answer",
    [
        "[1, 2]",
        '{"alipay_system_oauth_token_response": "text", "sign": "AAAA"}',
        '{"alipay_system_oauth_token_response":',
        '{"something_else": {}}',
    ],
)
def test_odd_alipay_answers_are_unavailable_not_crashes(keys, answer):
    with fake_server(lambda r: Answer(200, answer)) as server, pytest.raises(DomainError) as refusal:
        oauth(server.url, keys).identity_for_code("abc")
    assert refusal.value.code == "unavailable"
