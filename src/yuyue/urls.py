from django.contrib import admin
from django.urls import include, path

from yuyue.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("console/", include("yuyue.console.urls")),
    path("pay/", include("yuyue.payments.urls")),
    path("chat/", include("yuyue.assistant.urls")),
    path("", include("yuyue.h5.urls")),
]
