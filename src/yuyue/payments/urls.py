"""Payment pages of the site: paying from the H5 booking page and the sandbox cashier (under /pay/)."""

from django.urls import path

from yuyue.payments import views

app_name = "payments"
urlpatterns = [
    path("b/<str:code>/", views.h5_pay, name="h5_pay"),
    path("sandbox/<str:out_trade_no>/", views.sandbox_cashier, name="sandbox_cashier"),
]
