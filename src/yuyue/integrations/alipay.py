"""Alipay mini-program sign-in: ``alipay.system.oauth.token`` through Alipay's open API gateway.

Requests are signed RSA2 (SHA256withRSA over the sorted ``key=value`` pairs) with the app's
private key; answers are accepted only when their ``sign`` verifies with Alipay's public key over
the exact bytes of the response node, as Alipay's own SDKs do. Built on ``cryptography`` (which
yuyue already uses) rather than an SDK, so the few lines that matter are visible and tested.

Without ``YUYUE_ALIPAY_APP_ID`` (demo and development) a local sandbox gateway with its own key
pair answers: it checks the request signature and signs its answer, and the client verifies it
with the same code as in production. Codes starting with ``demo-`` sign in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.integrations.http import json_object

log = logging.getLogger(__name__)

OAUTH_METHOD = "alipay.system.oauth.token"
RESPONSE_NODE = "alipay_system_oauth_token_response"
# sub_codes meaning "this auth code is no good" (expired, used, or for another app).
_BAD_CODE = {"isv.code-invalid", "isv.invalid-auth-code", "isv.auth-code-invalid", "isv.grant-type-invalid"}


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(_pem(text, "PRIVATE KEY"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the Alipay app key must be an RSA key")
    return key


def load_public_key(text: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(_pem(text, "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the Alipay public key must be an RSA key")
    return key


def _pem(text: str, label: str) -> bytes:
    """PEM text, a path to a PEM file, or the bare base64 body that Alipay's console shows."""
    text = text.strip()
    if not text.startswith("-----BEGIN") and _is_file(text):
        text = Path(text).read_text().strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    body = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a key body is no file name (too long for one, say)
        return False


def signing_content(params: dict[str, str]) -> str:
    """What RSA2 signs: non-empty parameters except ``sign``, sorted by name, as ``k=v`` joined by ``&``."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v not in ("", None))


def rsa2_sign(content: str, key: rsa.RSAPrivateKey) -> str:
    return base64.b64encode(key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa2_verify(content: str, signature: str, key: rsa.RSAPublicKey) -> bool:
    try:
        key.verify(base64.b64decode(signature), content.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def response_node(text: str, node: str) -> str | None:
    """The exact JSON text of ``node``'s value in a gateway answer (what Alipay signed), or None."""
    at = text.find(f'"{node}"')
    if at < 0:
        return None
    start = text.index(":", at + len(node) + 2) + 1
    while text[start] in " \t\r\n":
        start += 1
    _value, end = json.JSONDecoder().raw_decode(text, start)
    return text[start:end]


@dataclass(frozen=True)
class AlipayIdentity:
    """Who signed in: ``user_id`` (2088…) for older apps, ``open_id`` for apps created since 2023."""

    user_id: str
    open_id: str
    access_token: str

    @property
    def key(self) -> str:
        return self.user_id or self.open_id


class AlipayOAuth:
    def __init__(
        self,
        *,
        app_id: str,
        app_private_key: rsa.RSAPrivateKey,
        alipay_public_key: rsa.RSAPublicKey,
        gateway: str = "https://openapi.alipay.com/gateway.do",
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.app_id = app_id
        self.app_private_key = app_private_key
        self.alipay_public_key = alipay_public_key
        self.gateway = gateway
        self.timeout = timeout
        self.transport = transport

    def signed_params(self, code: str) -> dict[str, str]:
        params = {
            "app_id": self.app_id,
            "method": OAUTH_METHOD,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            # Alipay reads the timestamp as Beijing time.
            "timestamp": timeutil.now().astimezone(timeutil.local_zone()).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "grant_type": "authorization_code",
            "code": code,
        }
        params["sign"] = rsa2_sign(signing_content(params), self.app_private_key)
        return params

    def identity_for_code(self, code: str) -> AlipayIdentity:
        """Exchange a ``my.getAuthCode`` code for the user's id, or a translated refusal."""
        if not code or len(code) > 128:
            raise DomainError("invalid", fields={"code": _("The sign-in code is missing or too long.")})
        try:
            with httpx.Client(transport=self.transport, timeout=self.timeout) as client:
                response = client.post(self.gateway, params={"charset": "utf-8"}, data=self.signed_params(code))
            text = response.text
            body = json_object(text)
            node_text = response_node(text, RESPONSE_NODE) or response_node(text, "error_response")
            node = json_object(node_text) if node_text is not None else {}
        except (httpx.HTTPError, ValueError, IndexError) as exc:
            log.error("Alipay gateway did not answer usefully: %s", exc)
            raise DomainError("unavailable") from None
        signature = body.get("sign")
        if node_text is None or (
            signature is not None and not rsa2_verify(node_text, str(signature), self.alipay_public_key)
        ):
            log.error("Alipay answer with a bad or missing signature refused")
            raise DomainError("unavailable")
        if RESPONSE_NODE in body and signature is not None and (node.get("user_id") or node.get("open_id")):
            return AlipayIdentity(
                user_id=str(node.get("user_id") or ""),
                open_id=str(node.get("open_id") or ""),
                access_token=str(node.get("access_token") or ""),
            )
        sub_code = str(node.get("sub_code") or "")
        if sub_code in _BAD_CODE:
            raise DomainError("invalid", fields={"code": _("This Alipay sign-in code is not valid; please try again.")})
        log.error("Alipay oauth.token failed: %s %s %s", node.get("code"), sub_code, node.get("sub_msg"))
        raise DomainError("unavailable")


# --- Sandbox (demo mode) ----------------------------------------------------------------------


class SandboxAlipayGateway(httpx.BaseTransport):
    """A local stand-in for Alipay's gateway: verifies the app's RSA2 signature like Alipay does,
    answers ``demo-…`` codes with a stable user id, and signs every answer with its own key."""

    def __init__(self, *, app_id: str, app_public_key: rsa.RSAPublicKey, gateway_key: rsa.RSAPrivateKey) -> None:
        self.app_id = app_id
        self.app_public_key = app_public_key
        self.gateway_key = gateway_key

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        params = dict(parse_qsl(request.content.decode(), keep_blank_values=True))
        if params.get("app_id") != self.app_id or params.get("method") != OAUTH_METHOD:
            return self._answer(
                "error_response", {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-app-id"}
            )
        if not rsa2_verify(signing_content(params), params.get("sign", ""), self.app_public_key):
            return self._answer(
                "error_response", {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature"}
            )
        code = params.get("code", "")
        if params.get("grant_type") != "authorization_code" or not code.startswith("demo-"):
            return self._answer(
                "error_response", {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.code-invalid"}
            )
        digest = int(hashlib.sha256(f"{self.app_id}|{code}".encode()).hexdigest(), 16)
        return self._answer(
            RESPONSE_NODE,
            {
                "user_id": f"2088{digest % 10**12:012d}",
                "access_token": f"sandbox{digest % 10**20:020d}",
                "expires_in": 1296000,
                "refresh_token": f"sandboxr{digest % 10**19:019d}",
                "re_expires_in": 2592000,
            },
        )

    def _answer(self, node: str, value: dict[str, Any]) -> httpx.Response:
        node_text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        sign = rsa2_sign(node_text, self.gateway_key)
        return httpx.Response(200, text=f'{{"{node}":{node_text},"sign":"{sign}"}}')


SANDBOX_APP_ID = "2021000000000000"


@cache
def _sandbox_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """The sandbox app's and gateway's key pairs, made once per process (they never leave it)."""
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


def client() -> AlipayOAuth:
    """The configured Alipay app, or the sandbox when no app id is set in demo mode."""
    if settings.ALIPAY_APP_ID:
        return AlipayOAuth(
            app_id=settings.ALIPAY_APP_ID,
            app_private_key=load_private_key(settings.ALIPAY_APP_PRIVATE_KEY),
            alipay_public_key=load_public_key(settings.ALIPAY_PUBLIC_KEY),
            gateway=settings.ALIPAY_GATEWAY,
            timeout=settings.INTEGRATION_TIMEOUT,
        )
    if not settings.SIGN_IN_SANDBOX:
        raise DomainError("unavailable", _("Alipay sign-in is not set up on this server."))
    app_key, gateway_key = _sandbox_keys()
    return AlipayOAuth(
        app_id=SANDBOX_APP_ID,
        app_private_key=app_key,
        alipay_public_key=gateway_key.public_key(),
        gateway="https://sandbox.alipay.invalid/gateway.do",
        transport=SandboxAlipayGateway(
            app_id=SANDBOX_APP_ID, app_public_key=app_key.public_key(), gateway_key=gateway_key
        ),
    )
