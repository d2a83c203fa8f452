"""Which payment providers this installation offers, by name.

Each adapter module exposes ``from_settings() -> Provider | None`` (None: not configured). Modules
are imported on first use, so an installation without WeChat Pay never loads its SDK, and the
configured adapters are built once per process (they may load keys and certificates); a settings
change (tests) forgets them.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from yuyue.payments.providers.base import Provider

log = logging.getLogger(__name__)

# name -> module with from_settings(); the order is the order clients are offered them in.
MODULES: dict[str, str] = {
    "wechat": "yuyue.payments.providers.wechatpay",
    "alipay": "yuyue.payments.providers.alipay",
    "sandbox": "yuyue.payments.providers.sandbox",
}
# The channels each provider accepts; the first is the default for H5 pages.
CHANNELS: dict[str, tuple[str, ...]] = {
    "wechat": ("h5", "jsapi"),
    "alipay": ("wap",),
    "sandbox": ("cashier",),
}

_built: dict[str, Any] = {}
_lock = threading.Lock()
_MISSING = object()


def get(name: str) -> Provider | None:
    """The configured provider called ``name``, or None (unknown name, not configured)."""
    if name not in MODULES:
        return None
    with _lock:
        if name not in _built:
            _built[name] = _build(name)
        found = _built[name]
    return None if found is _MISSING else found  # type: ignore[no-any-return]


def _build(name: str) -> Any:
    try:
        module = importlib.import_module(MODULES[name])
    except ImportError:
        log.warning("payment provider %s is not installed", name)
        return _MISSING
    provider = module.from_settings()
    return _MISSING if provider is None else provider


def available() -> list[str]:
    """Names of the providers that are configured here, in the order clients are offered them."""
    return [name for name in MODULES if get(name) is not None]


def reset() -> None:
    """Forget the built adapters (after a settings change)."""
    with _lock:
        _built.clear()


@receiver(setting_changed, dispatch_uid="payments-registry-reset")
def _settings_changed(**kwargs: Any) -> None:
    reset()
