"""H5 pages of the signed-in user: "我的数据" (download as JSON), deleting the account, withdrawing
the consent for a person's ID number. Thin: the work is in ``privacy.services``."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from yuyue.accounts.models import EndUser
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.h5.auth import sign_out, user_required
from yuyue.privacy import consent, services
from yuyue.privacy.models import Consent


@user_required
@require_GET
def my_data_page(request: HttpRequest, user: EndUser) -> HttpResponse:
    consents = [
        {"row": c, "text": consent.text(c.kind, c.text_version)}
        for c in Consent.objects.filter(user=user).select_related("person").order_by("-id")[:100]
    ]
    return render(request, "privacy/h5/my_data.html", {"me": user, "consents": consents})


@user_required
@require_GET
def my_data_download(request: HttpRequest, user: EndUser) -> HttpResponse:
    try:
        data = services.my_data(user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("h5:my_data"))
    body = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    name = f"yuyue-my-data-{timeutil.today().isoformat()}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


@user_required
@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest, user: EndUser) -> HttpResponse:
    blockers = services.deletion_blockers(user)
    error = ""
    if request.method == "POST":
        if request.POST.get("confirm") != "1":
            error = _("Please tick the box to confirm.")
        else:
            try:
                services.delete_account(user)
            except DomainError as exc:
                error = exc.message
                blockers = services.deletion_blockers(user)
            else:
                sign_out(request)
                messages.success(request, _("Your account was deleted."))
                return HttpResponseRedirect(reverse("h5:home"))
    context = {"me": user, "blockers": blockers.as_fields(), "error": error}
    return render(request, "privacy/h5/delete.html", context, status=422 if error else 200)


@user_required
@require_POST
def withdraw_id(request: HttpRequest, user: EndUser, person_id: int) -> HttpResponse:
    try:
        person = services.withdraw_id_number(owner=user, person_id=person_id)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The ID number of %(name)s was deleted.") % {"name": person.name})
    return HttpResponseRedirect(reverse("h5:people"))


urlpatterns = [
    path("me/data/", my_data_page, name="my_data"),
    path("me/data/download.json", my_data_download, name="my_data_download"),
    path("me/delete/", delete_account, name="delete_account"),
    path("me/people/<int:person_id>/withdraw-id/", withdraw_id, name="person_withdraw_id"),
]
