from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

PLAIN = "<!doctype html><html><head><title>plain</title></head><body>plain</body></html>"


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/page.html")


def script_page(request: HttpRequest) -> HttpResponse:
    request.csp_nonce = "n0nce-from-django"  # what django-csp sets
    return render(request, "pages/script.html")


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PLAIN)


async def async_page(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/page.html")


@csrf_exempt
def login_view(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return HttpResponse("bad credentials", status=401)
    login(request, user)
    return HttpResponseRedirect("/")


@csrf_exempt
def clear_session(request: HttpRequest) -> HttpResponse:
    """A log-out that forgets Django's logout(): the session is emptied, no signal sent."""
    request.session.flush()
    return HttpResponseRedirect("/")


@csrf_exempt
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponseRedirect("/")
