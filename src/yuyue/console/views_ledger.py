"""Console page of the ledger: the daily checkpoints, each downloadable as JSON to publish elsewhere."""

from __future__ import annotations

import datetime as dt
import json

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from yuyue.console.access import Desk, console_view
from yuyue.ledger import services
from yuyue.ledger.models import ChainHead, Checkpoint

PERMISSION = "audit.view"  # the owner's


def _desk(request: HttpRequest) -> Desk:
    return request.desk  # type: ignore[attr-defined,no-any-return]


@console_view(PERMISSION)
@require_GET
def ledger(request: HttpRequest) -> HttpResponse:
    desk = _desk(request)
    checkpoints = Checkpoint.objects.filter(merchant=desk.merchant).order_by("-date")
    return render(
        request,
        "console/ledger/list.html",
        {
            "head": ChainHead.objects.filter(merchant=desk.merchant).first(),
            "page_obj": Paginator(checkpoints, 60).get_page(request.GET.get("page")),
        },
    )


@console_view(PERMISSION)
@require_GET
def checkpoint_json(request: HttpRequest, day: str) -> HttpResponse:
    try:
        date = dt.date.fromisoformat(day)
    except ValueError:
        raise Http404 from None
    checkpoint = Checkpoint.objects.filter(merchant=_desk(request).merchant, date=date).first()
    if checkpoint is None:
        raise Http404
    body = json.dumps(services.export_checkpoint(checkpoint), ensure_ascii=False, indent=2, sort_keys=True)
    response = HttpResponse(body + "\n", content_type="application/json; charset=utf-8")
    slug = _desk(request).merchant.slug
    response["Content-Disposition"] = f'attachment; filename="ledger-checkpoint-{slug}-{date}.json"'
    return response


urlpatterns = [
    path("ledger/", ledger, name="ledger"),
    path("ledger/<str:day>.json", checkpoint_json, name="ledger_checkpoint"),
]
