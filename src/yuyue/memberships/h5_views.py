"""H5 pages of the signed-in user: my points (per merchant, with history) and my membership cards."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

from yuyue.accounts.models import EndUser
from yuyue.h5.auth import user_required
from yuyue.memberships import selectors


@user_required
@require_GET
def my_points(request: HttpRequest, user: EndUser) -> HttpResponse:
    context = {
        "me": user,
        "balances": list(selectors.points_balances(user)),
        "entries": list(selectors.points_history(user)[:100]),
    }
    return render(request, "memberships/h5/points.html", context)


@user_required
@require_GET
def my_cards(request: HttpRequest, user: EndUser) -> HttpResponse:
    cards = [(card, selectors.card_history(card, limit=50)) for card in selectors.cards(user)[:50]]
    return render(request, "memberships/h5/cards.html", {"me": user, "cards": cards})


urlpatterns = [
    path("me/points/", my_points, name="points"),
    path("me/cards/", my_cards, name="cards"),
]
