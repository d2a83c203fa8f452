"""The H5 booking app, mounted at the site root."""

from django.urls import include, path
from django.views.i18n import set_language

from yuyue.h5 import views

app_name = "h5"
urlpatterns = [
    path("", views.home, name="home"),
    path("o/<int:offering_id>/", views.offering_page, name="offering"),
    path("o/<int:offering_id>/slots/", views.offering_slots, name="offering_slots"),
    path("slots/<int:slot_id>/book/", views.book_page, name="book"),
    path("me/bookings/", views.my_bookings, name="my_bookings"),
    path("me/people/", views.people_page, name="people"),
    path("me/people/add/", views.person_add, name="person_add"),
    path("me/people/<int:person_id>/remove/", views.person_remove, name="person_remove"),
    path("me/people/check-id/", views.check_id, name="check_id"),
    path("me/waitlist/<int:entry_id>/leave/", views.waitlist_leave, name="waitlist_leave"),
    path("b/<str:code>/", views.booking_page, name="booking"),
    path("b/<str:code>/cancel/", views.booking_cancel, name="cancel"),
    path("b/<str:code>/reschedule/", views.booking_reschedule, name="reschedule"),
    path("b/<str:code>/reschedule/slots/", views.reschedule_slots, name="reschedule_slots"),
    path("b/<str:code>/review/", views.booking_review, name="review"),
    path("b/<str:code>/voucher.svg", views.voucher_svg, name="voucher"),
    path("b/<str:code>/calendar.ics", views.calendar_ics, name="calendar"),
    path("signin/", views.signin, name="signin"),
    path("signout/", views.signout, name="signout"),
    path("elder/", views.elder_mode, name="elder"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("me/inbox/", views.inbox_page, name="inbox"),
    path("me/notifications/", views.notification_settings, name="notification_settings"),
    path("", include("yuyue.memberships.h5_views")),  # me/points/, me/cards/
    path("", include("yuyue.privacy.h5_views")),  # me/data/, me/delete/, withdrawing an ID's consent
]
