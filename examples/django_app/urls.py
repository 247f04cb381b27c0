"""The example's routes: the page, the login, the health check and the WebSocket."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("login", views.login),
    path("health", views.health),
    path("ws", views.websocket),
]
