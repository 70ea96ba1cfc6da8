"""The staff desk page; its live content comes over the WebSocket."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@staff_member_required(login_url="login")
def desk(request: HttpRequest) -> HttpResponse:
    return render(request, "desk.html")
