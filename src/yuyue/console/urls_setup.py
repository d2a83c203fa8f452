"""Console URLs for setting up: calendar, weekly rules, slots, closed days, resources, offerings."""

from django.urls import path

from yuyue.console import views_setup as views

urlpatterns = [
    path("calendar/", views.calendar, name="calendar"),
    path("schedules/", views.schedules, name="schedules"),
    path("schedules/new/", views.schedule_edit, name="schedule_new"),
    path("schedules/<int:schedule_id>/", views.schedule_edit, name="schedule_edit"),
    path("schedules/<int:schedule_id>/toggle/", views.schedule_toggle, name="schedule_toggle"),
    path("slots/new/", views.slot_new, name="slot_new"),
    path("slots/<int:slot_id>/", views.slot_detail, name="slot_detail"),
    path("slots/<int:slot_id>/capacity/", views.slot_capacity, name="slot_capacity"),
    path("slots/<int:slot_id>/close/", views.slot_close, name="slot_close"),
    path("slots/<int:slot_id>/reopen/", views.slot_reopen, name="slot_reopen"),
    path("closed-days/", views.closed_dates, name="closed_dates"),
    path("closed-days/new/", views.close_day, name="close_day"),
    path("closed-days/<int:closed_date_id>/delete/", views.closed_date_delete, name="closed_date_delete"),
    path("resources/", views.resources, name="resources"),
    path("resources/new/", views.resource_edit, name="resource_new"),
    path("resources/<int:resource_id>/", views.resource_edit, name="resource_edit"),
    path("offerings/", views.offerings, name="offerings"),
    path("offerings/new/", views.offering_edit, name="offering_new"),
    path("offerings/<int:offering_id>/", views.offering_edit, name="offering_edit"),
]
