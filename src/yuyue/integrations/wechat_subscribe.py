"""WeChat mini-program subscribe messages (订阅消息): access token and ``message/subscribe/send``.

A one-time subscription allows one message per consent the user gave in the mini-program
(``wx.requestSubscribeMessage``); the notify app records and consumes those consents. This module
only talks to WeChat: it fetches and caches the access token, fits every value into WeChat's
limits for its field type (``thing`` 20 characters, ``phrase`` 5, ``name`` 10, …), and sends.
Without ``YUYUE_WECHAT_APP_ID`` nothing is sent (the notify app skips the channel).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.core.cache import cache

from yuyue.integrations.http import json_object

log = logging.getLogger(__name__)

# errcodes: 40001 / 42001 / 40014 the token is invalid or expired (fetch a new one and try once more);
# 43101 the user has no subscription left for this template (the consent is spent or refused);
# 47003 a value WeChat refuses for its field; 40003 an openid not of this app.
_TOKEN_INVALID = {40001, 40014, 42001}
_NO_CONSENT = {43101}
_REFUSED_FOR_GOOD = {40003, 40037, 47003}

# Longest value WeChat accepts per field type (the part of the key before its number).
VALUE_LIMITS: dict[str, int] = {
    "thing": 20,
    "phrase": 5,
    "name": 10,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "amount": 32,
    "phone_number": 17,
    "car_number": 8,
    "time": 40,
    "date": 40,
}
ELLIPSIS = "…"


class WeChatSendError(Exception):
    """WeChat did not deliver. ``permanent``: trying again cannot help (no consent, bad openid)."""

    def __init__(self, message: str, *, errcode: int = 0, permanent: bool = False) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.permanent = permanent


def field_type(key: str) -> str:
    """``thing12`` → ``thing``; ``character_string3`` → ``character_string``."""
    return re.sub(r"\d+$", "", key)


def fit_value(key: str, value: Any) -> str:
    """A value WeChat accepts for the field ``key``: trimmed, one line, cut with "…" when too long.

    Never raises: an unknown field type keeps at most 20 characters, an empty value becomes "-".
    """
    text = " ".join(str(value if value is not None else "").split())
    kind = field_type(key)
    limit = VALUE_LIMITS.get(kind, 20)
    if kind in {"number", "character_string", "letter", "phone_number", "car_number", "amount", "symbol"}:
        text = text.replace(ELLIPSIS, "")  # these types refuse "…": cut plainly
        return text[:limit] or "-"
    if kind == "phrase":
        # Only Chinese characters are allowed in a phrase: keep those, else a plain cut.
        chinese = "".join(ch for ch in text if "\u4e00" <= ch <= "\u9fff")
        text = chinese or text
        return text[:limit] or "-"
    if len(text) > limit:
        return text[: limit - 1] + ELLIPSIS
    return text or "-"


@dataclass(frozen=True)
class SubscribeMessage:
    openid: str
    template_id: str
    data: dict[str, str]
    page: str = ""


class WeChatSubscribeClient:
    def __init__(
        self,
        *,
        app_id: str,
        app_secret: str,
        base_url: str = "https://api.weixin.qq.com",
        timeout: float = 5.0,
        state: str = "formal",
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.state = state
        self._lock = threading.Lock()

    @property
    def _cache_key(self) -> str:
        return f"wechat:access_token:{self.app_id}"

    def access_token(self, *, refresh: bool = False) -> str:
        """The app's access token, from the cache shared by all processes while it is valid."""
        if not refresh and (token := cache.get(self._cache_key)):
            return str(token)
        with self._lock:
            if not refresh and (token := cache.get(self._cache_key)):
                return str(token)
            params = {"grant_type": "client_credential", "appid": self.app_id, "secret": self.app_secret}
            try:
                response = httpx.get(f"{self.base_url}/cgi-bin/token", params=params, timeout=self.timeout)
                body = json_object(response.text)
            except (httpx.HTTPError, ValueError) as exc:
                raise WeChatSendError(f"token request failed: {exc}") from None
            token = str(body.get("access_token") or "")
            if not token:
                raise WeChatSendError(
                    f"token refused: {body.get('errcode')} {body.get('errmsg')}", errcode=int(body.get("errcode") or 0)
                )
            # Keep it a little shorter than WeChat does, so a token never expires in flight.
            ttl = max(60, int(body.get("expires_in") or 7200) - 300)
            cache.set(self._cache_key, token, ttl)
            return token

    def payload(self, message: SubscribeMessage) -> dict[str, Any]:
        body: dict[str, Any] = {
            "touser": message.openid,
            "template_id": message.template_id,
            "data": {key: {"value": fit_value(key, value)} for key, value in message.data.items()},
            "miniprogram_state": self.state,
            "lang": "zh_CN",
        }
        if message.page:
            body["page"] = message.page
        return body

    def send(self, message: SubscribeMessage) -> None:
        """Send one message; a stale token is refreshed once. Raises WeChatSendError."""
        body = self.payload(message)
        for attempt in range(2):
            token = self.access_token(refresh=attempt > 0)
            try:
                response = httpx.post(
                    f"{self.base_url}/cgi-bin/message/subscribe/send",
                    params={"access_token": token},
                    json=body,
                    timeout=self.timeout,
                )
                answer = json_object(response.text)
            except (httpx.HTTPError, ValueError) as exc:
                raise WeChatSendError(f"send failed: {exc}") from None
            errcode = int(answer.get("errcode") or 0)
            if errcode == 0:
                return
            if errcode in _TOKEN_INVALID and attempt == 0:
                cache.delete(self._cache_key)
                continue
            message_text = f"errcode {errcode}: {answer.get('errmsg', '')}"
            raise WeChatSendError(message_text, errcode=errcode, permanent=errcode in _NO_CONSENT | _REFUSED_FOR_GOOD)
        raise WeChatSendError("access token refused twice")


def client() -> WeChatSubscribeClient | None:
    """The configured mini-program, or None when none is (then nothing goes to WeChat)."""
    if not settings.WECHAT_APP_ID:
        return None
    return WeChatSubscribeClient(
        app_id=settings.WECHAT_APP_ID,
        app_secret=settings.WECHAT_APP_SECRET,
        base_url=settings.WECHAT_API_BASE,
        timeout=settings.INTEGRATION_TIMEOUT,
        state=settings.WECHAT_SUBSCRIBE_STATE,
    )
