from django.urls import path

from .pages import views

urlpatterns = [
    path("", views.page),
    path("script", views.script_page),
    path("plain", views.plain),
    path("async", views.async_page),
    path("login", views.login_view),
    path("logout", views.logout_view),
    path("clear", views.clear_session),
]
