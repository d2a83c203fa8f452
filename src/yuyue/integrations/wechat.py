"""WeChat mini-program sign-in: exchange a ``wx.login`` code for the user's openid (code2session).

Without ``YUYUE_WECHAT_APP_ID`` (demo and development) the same client talks to a local sandbox
transport that answers like WeChat: codes starting with ``demo-`` sign in, anything else is
refused with WeChat's own error code. So the demo exercises the real parsing and error handling.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from yuyue.core.errors import DomainError
from yuyue.integrations.http import json_object

log = logging.getLogger(__name__)

# errcode → how we answer. 40029: invalid code, 40163: code already used, 45011: too frequent,
# 40226: a user WeChat considers high-risk. Anything else is our configuration or their outage.
_BAD_CODE = {40029, 40163}
_THROTTLED = {45011}
_BLOCKED = {40226}


@dataclass(frozen=True)
class WeChatSession:
    openid: str
    session_key: str
    unionid: str = ""


class WeChatMiniProgram:
    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        base_url: str = "https://api.weixin.qq.com",
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.transport = transport

    def code2session(self, js_code: str) -> WeChatSession:
        """The session for a ``wx.login`` code, or a translated refusal."""
        if not js_code or len(js_code) > 128:
            raise DomainError("invalid", fields={"code": _("The sign-in code is missing or too long.")})
        params = {
            "appid": self.app_id,
            "secret": self.app_secret,
            "js_code": js_code,
            "grant_type": "authorization_code",
        }
        try:
            with httpx.Client(transport=self.transport, timeout=self.timeout) as client:
                response = client.get(f"{self.base_url}/sns/jscode2session", params=params)
            # WeChat answers JSON with a text/plain content type.
            body = json_object(response.text)
            errcode = int(body.get("errcode") or 0)
        except (httpx.HTTPError, ValueError, TypeError) as exc:
            log.error("WeChat code2session did not answer usefully: %s", exc)
            raise DomainError("unavailable") from None
        if errcode == 0 and body.get("openid"):
            return WeChatSession(
                openid=str(body["openid"]),
                session_key=str(body.get("session_key", "")),
                unionid=str(body.get("unionid", "")),
            )
        if errcode in _BAD_CODE:
            raise DomainError("invalid", fields={"code": _("This WeChat sign-in code is not valid; please try again.")})
        if errcode in _THROTTLED:
            raise DomainError("rate_limited")
        if errcode in _BLOCKED:
            raise DomainError("forbidden", _("WeChat did not allow this sign-in."))
        log.error("WeChat code2session failed: errcode %s %s", errcode, body.get("errmsg"))
        raise DomainError("unavailable")


class SandboxWeChatTransport(httpx.BaseTransport):
    """Answers ``/sns/jscode2session`` the way WeChat does, for demos without a WeChat app.

    ``demo-<anything>`` is a valid code and always maps to the same openid; other codes get
    errcode 40029. The app id and secret are checked like WeChat checks them.
    """

    def __init__(self, app_id: str, app_secret: str) -> None:
        self.app_id = app_id
        self.app_secret = app_secret

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        if request.url.path != "/sns/jscode2session" or query.get("grant_type") != "authorization_code":
            return _wechat_error(40013, "invalid request")
        if query.get("appid") != self.app_id or not hmac.compare_digest(query.get("secret", ""), self.app_secret):
            return _wechat_error(40125, "invalid appsecret")
        code = query.get("js_code", "")
        if not code.startswith("demo-"):
            return _wechat_error(40029, "invalid code")
        digest = hashlib.sha256(f"{self.app_id}|{code}".encode()).hexdigest()
        body = {"openid": f"sandbox-{digest[:20]}", "session_key": digest[20:44]}
        return httpx.Response(200, text=json.dumps(body), headers={"Content-Type": "text/plain"})


def _wechat_error(errcode: int, errmsg: str) -> httpx.Response:
    return httpx.Response(200, text=json.dumps({"errcode": errcode, "errmsg": errmsg}))


SANDBOX_APP_ID = "wx-sandbox"


def client() -> WeChatMiniProgram:
    """The configured mini-program, or the sandbox when no app id is set in demo mode."""
    if settings.WECHAT_APP_ID:
        return WeChatMiniProgram(
            app_id=settings.WECHAT_APP_ID,
            app_secret=settings.WECHAT_APP_SECRET,
            base_url=settings.WECHAT_API_BASE,
            timeout=settings.INTEGRATION_TIMEOUT,
        )
    if not settings.SIGN_IN_SANDBOX:
        raise DomainError("unavailable", _("WeChat sign-in is not set up on this server."))
    secret = hashlib.sha256(b"wechat sandbox|" + settings.SECRET_KEY.encode()).hexdigest()[:32]
    return WeChatMiniProgram(
        app_id=SANDBOX_APP_ID,
        app_secret=secret,
        base_url="https://sandbox.wechat.invalid",
        transport=SandboxWeChatTransport(SANDBOX_APP_ID, secret),
    )
