"""Adapters to the outside world: SMS, WeChat and Alipay sign-in.

httpx logs every request URL at INFO, and WeChat's code2session carries the app secret in the
query string: keep httpx's request log out of the application log.
"""

import logging

logging.getLogger("httpx").setLevel(logging.WARNING)
