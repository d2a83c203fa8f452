"""The console's 支付 page (included from console/urls_desk.py, so its names are ``console:…``)."""

from django.urls import path

from yuyue.payments import views

urlpatterns = [
    path("payments/", views.console_payments, name="payments"),
    path("payments/notices/<int:notice_id>/handled/", views.console_notice_handled, name="payment_notice_handled"),
]
