"""Django settings. Every knob is an environment variable named YUYUE_*, read here and nowhere else.

See README.md ("Configuration") for the list.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent
WORK_DIR = Path(os.environ.get("YUYUE_HOME", os.getcwd()))


def _env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """Use YUYUE_SECRET_KEY; on a laptop, make one once and keep it beside the database."""
    if key := os.environ.get("YUYUE_SECRET_KEY"):
        return key
    path = WORK_DIR / ".yuyue-secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = _env_bool("YUYUE_DEBUG")
SECRET_KEY = _secret_key()
# Field-encryption keys, newest first, comma separated (urlsafe base64 of 32 bytes each).
# Without them a key is derived from SECRET_KEY, which is fine for a laptop, not for production.
DATA_KEYS = [k.strip() for k in os.environ.get("YUYUE_DATA_KEYS", "").split(",") if k.strip()]
# Key of the blind index (keyed hash used to find encrypted values). Must outlive key rotation;
# defaults to one derived from the oldest data key.
INDEX_KEY = os.environ.get("YUYUE_INDEX_KEY", "")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("YUYUE_ALLOWED_HOSTS", "*").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("YUYUE_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # serves the API docs (Swagger UI) from local static files, not a CDN
    "yuyue.core",
    "yuyue.tenants",
    "yuyue.accounts",
    "yuyue.catalog",
    "yuyue.scheduling",
    "yuyue.booking",
    "yuyue.h5",
    "yuyue.console",
    "yuyue.notify",
    "yuyue.ledger",
    "yuyue.webhooks",
    "yuyue.insights",
    "yuyue.assistant",
    "yuyue.payments",
    "yuyue.memberships",
    "yuyue.privacy",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "yuyue.core.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "yuyue.core.security.SessionTimeoutMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Innermost: a rush's sold-out answers get every header above but skip the API and the engine.
    "yuyue.booking.fastpath.SoldOutMiddleware",
]

ROOT_URLCONF = "yuyue.urls"
WSGI_APPLICATION = "yuyue.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("YUYUE_DATABASE_URL") or f"sqlite:///{WORK_DIR / 'yuyue.sqlite3'}"
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=int(os.environ.get("YUYUE_DB_CONN_MAX_AGE", "60")))
_engine = _db["ENGINE"]
if _engine.endswith("sqlite3"):
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        # Writers queue for the database instead of failing with "database is locked".
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
    }
    # Tests use a file, not ":memory:", so that concurrent test threads share one database.
    _db["TEST"] = {"NAME": str(Path(_db["NAME"]).with_name("yuyue-test.sqlite3"))}
elif _engine.endswith("mysql"):
    _db["OPTIONS"] = {
        "charset": "utf8mb4",
        # READ COMMITTED avoids InnoDB gap locks turning concurrent inserts into deadlocks.
        "isolation_level": "read committed",
        "init_command": "SET sql_mode='STRICT_TRANS_TABLES', time_zone='+00:00'",
    }
    _db.setdefault("TEST", {})["CHARSET"] = "utf8mb4"
    _db["TEST"]["COLLATION"] = "utf8mb4_unicode_ci"
elif _engine.endswith("postgresql"):
    _db["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache and background work ----------------------------------------------------------
REDIS_URL = os.environ.get("YUYUE_REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The rush gate (booking/gate.py): a Redis counter per slot that answers "sold out" before the
# database; on whenever Redis is configured unless YUYUE_BOOKING_GATE=off. It is rebuilt from the
# database every BOOKING_GATE_TTL seconds and skipped for BOOKING_GATE_BREAK seconds after a Redis error.
BOOKING_GATE = os.environ.get("YUYUE_BOOKING_GATE", "on").lower() not in ("off", "0", "false", "no")
BOOKING_GATE_TTL = float(os.environ.get("YUYUE_BOOKING_GATE_TTL", "5"))
BOOKING_GATE_BREAK = float(os.environ.get("YUYUE_BOOKING_GATE_BREAK", "5"))
# With Redis, bearer-token lookups are cached this many seconds (0: off); revocations drop them at once.
TOKEN_CACHE_SECONDS = float(os.environ.get("YUYUE_TOKEN_CACHE_SECONDS", "600"))
# Settings read on every booking event (webhook endpoints, reminder hours) are kept in each process
# this many seconds (0: off); other processes see a change within that time (core/hotcache.py).
HOT_CACHE_SECONDS = float(os.environ.get("YUYUE_HOT_CACHE_SECONDS", "5"))
# A Celery broker makes background work go to `yuyue worker`; without one it runs in-process.
CELERY_BROKER_URL = os.environ.get("YUYUE_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"

# --- Internationalisation ------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = os.environ.get("YUYUE_TIME_ZONE", "Asia/Shanghai")

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("YUYUE_STATIC_ROOT", WORK_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Argon2 for new and changed passwords; older PBKDF2 hashes still verify and are upgraded at sign-in.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

# --- Sign-in, SMS, WeChat and Alipay (user side) ------------------------------------------------
# Bearer tokens issued at sign-in stay valid this many days (0: until signed out).
LOGIN_TOKEN_DAYS = int(os.environ.get("YUYUE_LOGIN_TOKEN_DAYS", "30"))
# SMS sign-in codes: lifetime, wrong guesses allowed per code, and the wait before a new code.
LOGIN_CODE_TTL_SECONDS = int(os.environ.get("YUYUE_LOGIN_CODE_TTL_SECONDS", "300"))
LOGIN_CODE_MAX_ATTEMPTS = int(os.environ.get("YUYUE_LOGIN_CODE_MAX_ATTEMPTS", "5"))
LOGIN_CODE_RESEND_SECONDS = int(os.environ.get("YUYUE_LOGIN_CODE_RESEND_SECONDS", "60"))
# Rate limits as "COUNT/SECONDS" rules, comma separated; every rule must hold (see core/ratelimit.py).
RATE_LOGIN_CODE_PHONE = os.environ.get("YUYUE_RATE_LOGIN_CODE_PHONE", "5/3600,10/86400")
RATE_LOGIN_CODE_IP = os.environ.get("YUYUE_RATE_LOGIN_CODE_IP", "20/3600")
RATE_BOOKING_USER = os.environ.get("YUYUE_RATE_BOOKING_USER", "10/60,60/3600")
# Booking creation per client address (API and H5 share it). Generous: behind carrier-grade NAT
# thousands of people share one address.
RATE_BOOKING_IP = os.environ.get("YUYUE_RATE_BOOKING_IP", "120/60,2000/3600")
# Sign-in attempts (SMS code, WeChat, Alipay) per client address, and SMS code checks per phone on top
# of the few guesses each code allows.
RATE_LOGIN_IP = os.environ.get("YUYUE_RATE_LOGIN_IP", "60/60,600/3600")
RATE_LOGIN_VERIFY_PHONE = os.environ.get("YUYUE_RATE_LOGIN_VERIFY_PHONE", "20/86400")
# "off" switches every limit above off at once (load benchmarks from one address); a single limit
# is switched off by setting it to "off".
RATE_LIMITS = os.environ.get("YUYUE_RATE_LIMITS", "on").strip().lower()
# Waiting room for the whole site (offerings can have their own in their policy): "HH:MM/MINUTES/PER_SECOND",
# e.g. "08:00/30/50": every day from 08:00 for 30 minutes, booking requests above 50 people a second
# queue and see their place (needs Redis; see core/waitingroom.py). Empty: off.
WAITING_ROOM = os.environ.get("YUYUE_WAITING_ROOM", "").strip()
# How long a person let out of the queue may go on booking without queueing again.
WAITING_ROOM_ADMISSION_MINUTES = int(os.environ.get("YUYUE_WAITING_ROOM_ADMISSION_MINUTES", "10"))
# Questions to the customer-service assistant, per signed-in user or per address.
RATE_ASSISTANT_ASK = os.environ.get("YUYUE_RATE_ASSISTANT_ASK", "20/60,300/3600")
# "Download my data" (GET /me/data and the H5 page), per account.
RATE_DATA_EXPORT = os.environ.get("YUYUE_RATE_DATA_EXPORT", "5/3600")
# Personal data of finished bookings (attendee names, ID numbers, phones, form answers) is wiped this
# many days after their time slot ended (see docs/privacy.md).
PERSONAL_DATA_RETENTION_DAYS = int(os.environ.get("YUYUE_PERSONAL_DATA_RETENTION_DAYS", "180"))
# Optional: an OpenAI-compatible chat-completions endpoint (base URL, e.g. http://127.0.0.1:11434/v1) that
# rephrases the assistant's FAQ answers. Empty: answers are the FAQ text as written; nothing else changes.
ASSISTANT_LLM_URL = os.environ.get("YUYUE_ASSISTANT_LLM_URL", "").rstrip("/")
ASSISTANT_LLM_MODEL = os.environ.get("YUYUE_ASSISTANT_LLM_MODEL", "")
ASSISTANT_LLM_KEY = os.environ.get("YUYUE_ASSISTANT_LLM_KEY", "")
ASSISTANT_LLM_TIMEOUT = float(os.environ.get("YUYUE_ASSISTANT_LLM_TIMEOUT", "5"))
# SMS: "console" logs the message (demo and development); "aliyun" sends through Aliyun SMS.
SMS_BACKEND = os.environ.get("YUYUE_SMS_BACKEND", "console")
SMS_LOGIN_TEMPLATE = os.environ.get("YUYUE_SMS_LOGIN_TEMPLATE", "SMS_LOGIN_CODE")
ALIYUN_SMS_ACCESS_KEY_ID = os.environ.get("YUYUE_ALIYUN_SMS_ACCESS_KEY_ID", "")
ALIYUN_SMS_ACCESS_KEY_SECRET = os.environ.get("YUYUE_ALIYUN_SMS_ACCESS_KEY_SECRET", "")
ALIYUN_SMS_SIGN_NAME = os.environ.get("YUYUE_ALIYUN_SMS_SIGN_NAME", "")
ALIYUN_SMS_ENDPOINT = os.environ.get("YUYUE_ALIYUN_SMS_ENDPOINT", "https://dysmsapi.aliyuncs.com/")
ALIYUN_SMS_REGION = os.environ.get("YUYUE_ALIYUN_SMS_REGION", "cn-hangzhou")
# WeChat mini-program sign-in (code2session). Without an app id a local sandbox answers "demo-…" codes.
WECHAT_APP_ID = os.environ.get("YUYUE_WECHAT_APP_ID", "")
WECHAT_APP_SECRET = os.environ.get("YUYUE_WECHAT_APP_SECRET", "")
WECHAT_API_BASE = os.environ.get("YUYUE_WECHAT_API_BASE", "https://api.weixin.qq.com")
# Alipay mini-program sign-in (alipay.system.oauth.token, RSA2). Keys: PEM text, a PEM file path or
# the bare base64 the Alipay console shows. Without an app id a local sandbox answers "demo-…" codes.
ALIPAY_APP_ID = os.environ.get("YUYUE_ALIPAY_APP_ID", "")
ALIPAY_APP_PRIVATE_KEY = os.environ.get("YUYUE_ALIPAY_APP_PRIVATE_KEY", "")
ALIPAY_PUBLIC_KEY = os.environ.get("YUYUE_ALIPAY_PUBLIC_KEY", "")
ALIPAY_GATEWAY = os.environ.get("YUYUE_ALIPAY_GATEWAY", "https://openapi.alipay.com/gateway.do")
# Alipay payments reuse the app above; with a seller id (2088…), only notifications for that seller count.
ALIPAY_SELLER_ID = os.environ.get("YUYUE_ALIPAY_SELLER_ID", "")
# WeChat Pay (APIv3, direct merchant). Keys: PEM text or a PEM file path. The platform public key
# and its id (PUB_KEY_ID_…) verify WeChat Pay's answers and notifications. Unset mchid: no WeChat Pay.
WECHATPAY_MCHID = os.environ.get("YUYUE_WECHATPAY_MCHID", "")
WECHATPAY_APPID = os.environ.get("YUYUE_WECHATPAY_APPID", "")
WECHATPAY_PRIVATE_KEY = os.environ.get("YUYUE_WECHATPAY_PRIVATE_KEY", "")
WECHATPAY_CERT_SERIAL = os.environ.get("YUYUE_WECHATPAY_CERT_SERIAL", "")
WECHATPAY_APIV3_KEY = os.environ.get("YUYUE_WECHATPAY_APIV3_KEY", "")
WECHATPAY_PUBLIC_KEY = os.environ.get("YUYUE_WECHATPAY_PUBLIC_KEY", "")
WECHATPAY_PUBLIC_KEY_ID = os.environ.get("YUYUE_WECHATPAY_PUBLIC_KEY_ID", "")
WECHATPAY_API_BASE = os.environ.get("YUYUE_WECHATPAY_API_BASE", "https://api.mch.weixin.qq.com")
# Seconds to wait for SMS, WeChat and Alipay servers.
INTEGRATION_TIMEOUT = float(os.environ.get("YUYUE_INTEGRATION_TIMEOUT", "5"))
# Behind a reverse proxy: the header carrying the client's address (X-Real-IP or X-Forwarded-For),
# used for per-IP limits. Empty: the connection's address.
CLIENT_IP_HEADER = os.environ.get("YUYUE_CLIENT_IP_HEADER", "")
# Demo mode: local stand-ins answer WeChat / Alipay "demo-…" codes when no app id is set. On by
# default only while SMS goes to the console (i.e. nothing real is configured), so a production
# server does not hand out accounts to anyone who types "demo-".
SIGN_IN_SANDBOX = _env_bool("YUYUE_SIGN_IN_SANDBOX", SMS_BACKEND == "console")


# Every rate limit setting, checked at start-up (and listed by core.ratelimit.configured()).
RATE_SETTINGS = (
    "RATE_LOGIN_CODE_PHONE",
    "RATE_LOGIN_CODE_IP",
    "RATE_LOGIN_IP",
    "RATE_LOGIN_VERIFY_PHONE",
    "RATE_BOOKING_USER",
    "RATE_BOOKING_IP",
    "RATE_ASSISTANT_ASK",
    "RATE_DATA_EXPORT",
)


def _check_sign_in_settings() -> None:
    """Fail at start-up, not at the first sign-in, when these settings cannot work."""
    import re

    from django.core.exceptions import ImproperlyConfigured

    rule = r"\s*[1-9][0-9]*/[1-9][0-9]*\s*"
    for name in RATE_SETTINGS:
        value = globals()[name]
        if value.strip() and value.strip().lower() != "off" and not re.fullmatch(f"{rule}(,{rule})*", value):
            raise ImproperlyConfigured(f"YUYUE_{name} must look like 5/3600,10/86400 (count/seconds), not {value!r}")
    if WAITING_ROOM and not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]/[1-9][0-9]*/[1-9][0-9]*", WAITING_ROOM):
        raise ImproperlyConfigured(
            f"YUYUE_WAITING_ROOM must look like 08:00/30/50 (start/minutes/per second), not {WAITING_ROOM!r}"
        )
    if RATE_LIMITS not in {"on", "off"}:
        raise ImproperlyConfigured(f"YUYUE_RATE_LIMITS must be on or off, not {RATE_LIMITS!r}")
    if SMS_BACKEND not in {"console", "aliyun"}:
        raise ImproperlyConfigured(f"YUYUE_SMS_BACKEND must be console or aliyun, not {SMS_BACKEND!r}")
    if SMS_BACKEND == "aliyun" and not (
        ALIYUN_SMS_ACCESS_KEY_ID and ALIYUN_SMS_ACCESS_KEY_SECRET and ALIYUN_SMS_SIGN_NAME
    ):
        raise ImproperlyConfigured("Aliyun SMS needs YUYUE_ALIYUN_SMS_ACCESS_KEY_ID, _ACCESS_KEY_SECRET and _SIGN_NAME")
    if ALIPAY_APP_ID and not (ALIPAY_APP_PRIVATE_KEY and ALIPAY_PUBLIC_KEY):
        raise ImproperlyConfigured("Alipay sign-in needs YUYUE_ALIPAY_APP_PRIVATE_KEY and YUYUE_ALIPAY_PUBLIC_KEY")
    if WECHAT_APP_ID and not WECHAT_APP_SECRET:
        raise ImproperlyConfigured("WeChat sign-in needs YUYUE_WECHAT_APP_SECRET")


_check_sign_in_settings()

# --- Merchant console ------------------------------------------------------------------------
# Sign-in lockout: this many failed passwords within the window lock the username (or, with
# the IP limit, the address; 0 turns that off) for as many minutes. Counted in the database, so all
# processes agree. Behind a reverse proxy set YUYUE_CLIENT_IP_HEADER, or every client shares one address.
CONSOLE_LOCKOUT_FAILURES = int(os.environ.get("YUYUE_CONSOLE_LOCKOUT_FAILURES", "5"))
CONSOLE_LOCKOUT_IP_FAILURES = int(os.environ.get("YUYUE_CONSOLE_LOCKOUT_IP_FAILURES", "20"))
CONSOLE_LOCKOUT_MINUTES = int(os.environ.get("YUYUE_CONSOLE_LOCKOUT_MINUTES", "15"))
# Rows per page in console lists, and rows per database round trip when exporting.
CONSOLE_PAGE_SIZE = int(os.environ.get("YUYUE_CONSOLE_PAGE_SIZE", "50"))
CONSOLE_EXPORT_CHUNK = int(os.environ.get("YUYUE_CONSOLE_EXPORT_CHUNK", "2000"))

# --- Security headers, HTTPS and sessions (see docs/security.md) ------------------------------
# Content-Security-Policy and Permissions-Policy sent with every response (core/security.py);
# set to an empty value to send none (e.g. when the reverse proxy adds its own).
from yuyue.core.security import DEFAULT_CSP, DEFAULT_PERMISSIONS_POLICY  # noqa: E402

CONTENT_SECURITY_POLICY = os.environ.get("YUYUE_CSP", DEFAULT_CSP)
PERMISSIONS_POLICY = os.environ.get("YUYUE_PERMISSIONS_POLICY", DEFAULT_PERMISSIONS_POLICY)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = os.environ.get("YUYUE_REFERRER_POLICY", "same-origin")
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# YUYUE_HTTPS=on: the site is served over HTTPS (directly or behind a proxy that sets
# X-Forwarded-Proto: https). Cookies are then sent over HTTPS only, and plain HTTP is redirected
# unless YUYUE_HTTPS_REDIRECT=off (e.g. when the proxy already redirects).
HTTPS = _env_bool("YUYUE_HTTPS")
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS and _env_bool("YUYUE_HTTPS_REDIRECT", True)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
# Strict-Transport-Security is sent on HTTPS responses only; seconds browsers remember it (0: none).
SECURE_HSTS_SECONDS = int(os.environ.get("YUYUE_HSTS_SECONDS", str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("YUYUE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = _env_bool("YUYUE_HSTS_PRELOAD")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
# Console and H5 sessions end this many hours after sign-in, and after this many minutes without a
# request (0: no idle limit). API bearer tokens have their own lifetime, YUYUE_LOGIN_TOKEN_DAYS.
SESSION_COOKIE_AGE = int(float(os.environ.get("YUYUE_SESSION_HOURS", "12")) * 3600)
SESSION_IDLE_SECONDS = int(float(os.environ.get("YUYUE_SESSION_IDLE_MINUTES", "120")) * 60)

# `yuyue serve` writes an access log line per request to stdout (off: none).
ACCESS_LOG = _env_bool("YUYUE_ACCESS_LOG", True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("YUYUE_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # 4xx answers (sold out, rate limited) are INFO, not warnings, and only logged on request.
        "django.request": {"filters": ["client_errors_as_info"]},
    },
    "filters": {
        "client_errors_as_info": {
            "()": "yuyue.core.logfilters.ClientErrorsAsInfo",
            "keep": _env_bool("YUYUE_LOG_CLIENT_ERRORS"),
        }
    },
}

# --- Notifications -----------------------------------------------------------------------------
# Outbox delivery: tries per row before it is dead, first retry delay (doubling, with jitter, capped),
# and the lease after which a row a dead worker left in "sending" is due again.
NOTIFY_OUTBOX_MAX_ATTEMPTS = int(os.environ.get("YUYUE_NOTIFY_MAX_ATTEMPTS", "8"))
NOTIFY_OUTBOX_BACKOFF_SECONDS = float(os.environ.get("YUYUE_NOTIFY_BACKOFF_SECONDS", "30"))
NOTIFY_OUTBOX_BACKOFF_MAX_SECONDS = float(os.environ.get("YUYUE_NOTIFY_BACKOFF_MAX_SECONDS", str(6 * 3600)))
NOTIFY_OUTBOX_LEASE_SECONDS = float(os.environ.get("YUYUE_NOTIFY_LEASE_SECONDS", "300"))
# Quiet hours (local time, "HH:MM-HH:MM"; empty: none): non-urgent SMS, WeChat and email wait until they end.
NOTIFY_QUIET_HOURS = os.environ.get("YUYUE_NOTIFY_QUIET_HOURS", "23:00-08:00")
# Messages about changes older than this many hours (a backlog, imported history) go to the inbox only.
NOTIFY_STALE_HOURS = float(os.environ.get("YUYUE_NOTIFY_STALE_HOURS", "24"))
# Reminder lead times in hours for offerings without their own (comma separated).
NOTIFY_REMINDER_HOURS = [
    float(h) for h in os.environ.get("YUYUE_NOTIFY_REMINDER_HOURS", "24,2").split(",") if h.strip()
]
# Email: Django's SMTP backend (console backend while no host is set).
EMAIL_HOST = os.environ.get("YUYUE_EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("YUYUE_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("YUYUE_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("YUYUE_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("YUYUE_EMAIL_TLS")
EMAIL_TIMEOUT = INTEGRATION_TIMEOUT
DEFAULT_FROM_EMAIL = os.environ.get("YUYUE_EMAIL_FROM", "yuyue <noreply@localhost>")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
# WeChat subscribe messages: the mini-program state sent with each (formal, trial or developer).
WECHAT_SUBSCRIBE_STATE = os.environ.get("YUYUE_WECHAT_SUBSCRIBE_STATE", "formal")
# The mini-program's subscribe-message template per event, "confirmed=TEMPLATE_ID,reminder=…"
# (a merchant's own template id, set in the console, wins). Events without one are not sent to WeChat.
WECHAT_SUBSCRIBE_TEMPLATES = dict(
    pair.strip().split("=", 1)
    for pair in os.environ.get("YUYUE_WECHAT_SUBSCRIBE_TEMPLATES", "").split(",")
    if "=" in pair
)


def _check_notify_settings() -> None:
    import re

    from django.core.exceptions import ImproperlyConfigured

    if NOTIFY_QUIET_HOURS.strip() and not re.fullmatch(r"\s*\d\d:\d\d\s*-\s*\d\d:\d\d\s*", NOTIFY_QUIET_HOURS):
        raise ImproperlyConfigured(f"YUYUE_NOTIFY_QUIET_HOURS must look like 23:00-08:00, not {NOTIFY_QUIET_HOURS!r}")
    if WECHAT_SUBSCRIBE_STATE not in {"formal", "trial", "developer"}:
        raise ImproperlyConfigured("YUYUE_WECHAT_SUBSCRIBE_STATE must be formal, trial or developer")
    if NOTIFY_OUTBOX_MAX_ATTEMPTS < 1 or NOTIFY_OUTBOX_LEASE_SECONDS <= 0:
        raise ImproperlyConfigured("YUYUE_NOTIFY_MAX_ATTEMPTS must be 1 or more, YUYUE_NOTIFY_LEASE_SECONDS positive")


_check_notify_settings()

# --- Ledger, vouchers and webhooks -------------------------------------------------------------
# Voucher signing keys, newest first, comma separated: new vouchers are signed with the first,
# every listed key still verifies (rotate by putting a new key in front; drop old ones later).
# Without them vouchers are signed with a key derived from SECRET_KEY.
VOUCHER_KEYS = [k.strip() for k in os.environ.get("YUYUE_VOUCHER_KEYS", "").split(",") if k.strip()]
# Dynamic QR codes (offerings with dynamic_voucher): seconds per code, and steps of clock skew allowed.
VOUCHER_TOTP_STEP = int(os.environ.get("YUYUE_VOUCHER_TOTP_STEP", "30"))
VOUCHER_TOTP_SKEW = int(os.environ.get("YUYUE_VOUCHER_TOTP_SKEW", "1"))
# Webhooks: seconds to wait for a merchant's endpoint, and consecutive failed deliveries after which
# the endpoint is disabled (the merchant sees a notice on its page).
WEBHOOK_TIMEOUT = float(os.environ.get("YUYUE_WEBHOOK_TIMEOUT", "10"))
WEBHOOK_DISABLE_AFTER = int(os.environ.get("YUYUE_WEBHOOK_DISABLE_AFTER", "20"))

# --- Payments ----------------------------------------------------------------------------------
# The address customers and payment providers reach this server at (e.g. https://book.example.com),
# for notify URLs and the page a payer returns to. Empty: the address of the request being served.
PUBLIC_URL = os.environ.get("YUYUE_PUBLIC_URL", "").rstrip("/")
# The sandbox cashier (a local stand-in for WeChat Pay and Alipay, payments/providers/sandbox.py): on
# by default in demo mode (like the sign-in sandboxes) while no real payment provider is configured.
PAYMENT_SANDBOX = _env_bool("YUYUE_PAYMENT_SANDBOX", SIGN_IN_SANDBOX and not (WECHATPAY_MCHID or ALIPAY_APP_ID))
# Key the sandbox signs its notifications with; empty: one derived from SECRET_KEY.
PAYMENT_SANDBOX_KEY = os.environ.get("YUYUE_PAYMENT_SANDBOX_KEY", "")
