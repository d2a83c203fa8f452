import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yuyue.settings")
application = get_wsgi_application()

# Benchmarks only (benchmarks/rush.py): count SQL statements per worker when YUYUE_COUNT_QUERIES is set.
if os.environ.get("YUYUE_COUNT_QUERIES"):
    from yuyue.core import querycount

    querycount.install_from_env()
