"""The H5 chat with the customer-service assistant, mounted at /chat/."""

from django.urls import path

from yuyue.assistant import views

app_name = "assistant"
urlpatterns = [
    path("", views.chat, name="chat"),
    path("ask/", views.ask, name="ask"),
    path("messages/", views.poll, name="poll"),
    path("action/", views.act, name="act"),
]
