"""Console URLs for the day's work: sign-in, bookings, export, check-in, customers, reviews, audit log."""

from django.urls import include, path

from yuyue.console import views_auth, views_desk

urlpatterns = [
    path("", views_auth.home, name="home"),
    path("login/", views_auth.login_view, name="login"),
    path("login/code/", views_auth.login_totp, name="login_totp"),
    path("merchant/", views_auth.choose_merchant, name="choose_merchant"),
    path("logout/", views_auth.logout_view, name="logout"),
    path("security/", views_auth.security, name="security"),
    path("bookings/", views_desk.bookings, name="bookings"),
    path("bookings/new/", views_desk.booking_new, name="booking_new"),
    path("bookings/export.xlsx", views_desk.bookings_export_xlsx, name="bookings_export_xlsx"),
    path("bookings/export.csv", views_desk.bookings_export_csv, name="bookings_export_csv"),
    path("bookings/<str:code>/", views_desk.booking_detail, name="booking"),
    path("bookings/<str:code>/cancel/", views_desk.booking_cancel, name="booking_cancel"),
    path("bookings/<str:code>/no-show/", views_desk.booking_no_show, name="booking_no_show"),
    path("bookings/<str:code>/move/", views_desk.booking_move, name="booking_move"),
    path("bookings/<str:code>/approve/", views_desk.booking_approve, name="booking_approve"),
    path("bookings/<str:code>/reject/", views_desk.booking_reject, name="booking_reject"),
    path("checkin/", views_desk.checkin, name="checkin"),
    path("customers/", views_desk.customers, name="customers"),
    path("customers/<int:user_id>/", views_desk.customer_detail, name="customer"),
    path("customers/<int:user_id>/notes/", views_desk.customer_note, name="customer_note"),
    path("customers/<int:user_id>/bans/", views_desk.customer_ban, name="customer_ban"),
    path("customers/<int:user_id>/bans/<int:ban_id>/lift/", views_desk.customer_lift_ban, name="customer_lift_ban"),
    path("reviews/", views_desk.reviews, name="reviews"),
    path("reviews/<int:review_id>/visibility/", views_desk.review_visibility, name="review_visibility"),
    path("audit/", views_desk.audit_log, name="audit"),
    path("", include("yuyue.console.views_webhooks")),
    path("", include("yuyue.console.views_ledger")),
    path("", include("yuyue.console.views_notify")),
    path("", include("yuyue.assistant.console")),
    path("", include("yuyue.memberships.console_views")),
    path("", include("yuyue.console.views_stats")),
    path("", include("yuyue.payments.console_urls")),
    path("", include("yuyue.privacy.console_views")),  # 显示证件号 (audited), the log of those views
]
