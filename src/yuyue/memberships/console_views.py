"""Console pages for membership cards and points: card products (会员卡), and a customer's cards and
points on the customer page (发卡, adjust points). Thin: the services decide, the audit log records."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from yuyue.accounts.models import EndUser
from yuyue.catalog.models import Offering
from yuyue.console import selectors as console_selectors
from yuyue.console.access import Desk, audit, console_view, desk_of, scope_offerings
from yuyue.console.forms_setup import PriceField, fen_to_yuan, put_errors, yuan_to_fen
from yuyue.core.errors import DomainError
from yuyue.memberships import selectors, services
from yuyue.memberships.models import CardProduct

CHANGE = "memberships.change"


class OfferingChoices(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj: Any) -> str:
        return obj.title  # type: ignore[no-any-return]


class CardProductForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Card name"), max_length=60)
    credits = forms.IntegerField(label=gettext_lazy("Classes"), min_value=1)
    valid_days = forms.IntegerField(label=gettext_lazy("Valid for (days)"), min_value=1)
    price_yuan = PriceField(label=gettext_lazy("Price (yuan)"))
    offerings = OfferingChoices(
        label=gettext_lazy("Offerings covered"),
        queryset=Offering.objects.none(),
        required=False,
        help_text=gettext_lazy("None chosen and no group: every offering."),
    )
    offering_group = forms.CharField(
        label=gettext_lazy("Offering group covered"),
        max_length=50,
        required=False,
        help_text=gettext_lazy("Also covers every offering whose limit group is this."),
    )
    is_active = forms.BooleanField(label=gettext_lazy("On sale"), required=False, initial=True)

    def __init__(self, *args: Any, desk: Desk, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["offerings"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = scope_offerings(desk, Offering.objects.filter(is_active=True)).order_by("id")

    def spec(self) -> services.ProductSpec:
        data = self.cleaned_data
        return services.ProductSpec(
            name=data["name"],
            credits=data["credits"],
            valid_days=data["valid_days"],
            price_fen=yuan_to_fen(data["price_yuan"]),
            offerings=list(data["offerings"]),
            offering_group=data["offering_group"],
            is_active=data["is_active"],
        )


@console_view("catalog.view")
@require_GET
def card_products(request: HttpRequest) -> HttpResponse:
    desk = desk_of(request)
    return render(
        request,
        "memberships/console/products.html",
        {"products": list(selectors.products(desk.merchant)), "can_change": desk.can(CHANGE)},
    )


def _product(desk: Desk, product_id: int) -> CardProduct:
    product = (
        CardProduct.objects.filter(pk=product_id, merchant=desk.merchant).first()
        if product_id <= console_selectors.MAX_ID
        else None
    )
    if product is None:
        raise Http404
    return product


def _edit(request: HttpRequest, product: CardProduct | None) -> HttpResponse:
    desk = desk_of(request)
    initial = None
    if product is not None:
        initial = {
            "name": product.name,
            "credits": product.credits,
            "valid_days": product.valid_days,
            "price_yuan": fen_to_yuan(product.price_fen),
            "offerings": list(product.offerings.values_list("pk", flat=True)),
            "offering_group": product.offering_group,
            "is_active": product.is_active,
        }
    form = CardProductForm(request.POST or None, desk=desk, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.save_product(merchant=desk.merchant, spec=form.spec(), product=product)
        except DomainError as exc:
            put_errors(form, exc)
        else:
            audit(request, "card_product.save", saved, name=saved.name, credits=saved.credits, new=product is None)
            messages.success(request, _("Saved."))
            return redirect("console:card_products")
    status = 400 if form.errors else 200
    return render(request, "memberships/console/product_edit.html", {"form": form, "product": product}, status=status)


@console_view(CHANGE)
@require_http_methods(["GET", "POST"])
def card_product_new(request: HttpRequest) -> HttpResponse:
    return _edit(request, None)


@console_view(CHANGE)
@require_http_methods(["GET", "POST"])
def card_product(request: HttpRequest, product_id: int) -> HttpResponse:
    return _edit(request, _product(desk_of(request), product_id))


# --- On the customer page ------------------------------------------------------------------------


def _customer(desk: Desk, user_id: int) -> EndUser:
    user = console_selectors.customer_or_none(desk, user_id) if user_id <= console_selectors.MAX_ID else None
    if user is None:
        raise Http404
    return user


def _back(user_id: int) -> HttpResponse:
    return redirect(reverse("console:customer", args=[user_id]) + "#memberships")


def _refused(request: HttpRequest, exc: DomainError) -> None:
    details = "; ".join(str(v) for v in exc.fields.values())
    messages.error(request, f"{exc.message} {details}".strip() if details else exc.message)


@console_view(CHANGE)
@require_POST
def customer_grant_card(request: HttpRequest, user_id: int) -> HttpResponse:
    """发卡: give the customer a card of one of the merchant's products (sold at the desk)."""
    desk = desk_of(request)
    user = _customer(desk, user_id)
    raw = request.POST.get("product", "")
    product = _product(desk, int(raw)) if raw.isdigit() else None
    if product is None:
        messages.error(request, _("Please choose a card."))
        return _back(user_id)
    try:
        card = services.grant_card(product=product, user=user, by=desk.user)
    except DomainError as exc:
        _refused(request, exc)
    else:
        audit(request, "card.grant", card, customer=user.pk, product=product.name, credits=card.credits_total)
        messages.success(request, _("Card issued: %(name)s.") % {"name": product.name})
    return _back(user_id)


@console_view(CHANGE)
@require_POST
def customer_points(request: HttpRequest, user_id: int) -> HttpResponse:
    """Add or take points by hand, with a reason (audited)."""
    desk = desk_of(request)
    user = _customer(desk, user_id)
    raw = request.POST.get("delta", "").strip()
    try:
        delta = int(raw) if raw.lstrip("+-").isdigit() and len(raw) <= 10 else None
        entry = services.adjust_points(
            merchant=desk.merchant, user=user, delta=delta, reason=request.POST.get("reason", ""), by=desk.user
        )
    except DomainError as exc:
        _refused(request, exc)
    else:
        audit(request, "points.adjust", user, delta=entry.delta, balance=entry.balance_after, reason=entry.reason)
        messages.success(request, _("Points changed by %(delta)d.") % {"delta": entry.delta})
    return _back(user_id)


urlpatterns = [
    path("cards/", card_products, name="card_products"),
    path("cards/new/", card_product_new, name="card_product_new"),
    path("cards/<int:product_id>/", card_product, name="card_product"),
    path("customers/<int:user_id>/cards/", customer_grant_card, name="customer_grant_card"),
    path("customers/<int:user_id>/points/", customer_points, name="customer_points"),
]
