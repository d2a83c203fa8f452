from django.urls import include, path

app_name = "console"
urlpatterns = [
    # sign-in, bookings, export, customers, check-in, reviews, audit log
    path("", include("yuyue.console.urls_desk")),
    # schedules, slots and calendar, resources, offerings
    path("", include("yuyue.console.urls_setup")),
]
