"""Demo data: one merchant for each kind, 200 customers and about 90 days of history.

Everything that happens to a booking goes through the engine (``booking.services``) with a past
``now=``, so the history obeys the same rules as real traffic: windows, limits, seats, resources,
no-show bans. Only timestamps the engine has no ``now=`` for (accounts' creation dates, points
entries) are set afterwards.

``load_demo()`` is idempotent: when the demo merchants exist it only tops up slots for the next
days and returns the logins. It is deterministic apart from booking codes and "today".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import math
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from stdnum.cn import ric

from yuyue.accounts.models import EndUser, Person, PointsEntry, Relation
from yuyue.accounts.services import add_person, get_or_create_user_by_phone
from yuyue.booking import services as engine
from yuyue.booking.models import Booking, Status, WaitlistEntry, WaitlistStatus
from yuyue.catalog.models import Offering, Resource, ResourceType
from yuyue.core import timeutil
from yuyue.core.errors import DomainError
from yuyue.payments import services as payments
from yuyue.payments.models import Refund, RefundState
from yuyue.payments.providers.base import ProviderError
from yuyue.scheduling.models import ClosedDate, Schedule, Slot, SlotStatus
from yuyue.scheduling.services import generate_slots
from yuyue.tenants.models import Branch, Merchant, Role, Staff

DEMO_PASSWORD = "yuyue-demo"  # the demo accounts' published password, printed by `yuyue demo`  # nosec B105
DEMO_PHONE = "13800000001"  # the demo end user: sign in on the H5 pages with this phone
KINDS = ("activity", "vehicle", "course", "exhibition", "scenic", "clinic")
SLUGS = {kind: f"demo-{kind}" for kind in KINDS}
HISTORY_DAYS = 90
FUTURE_DAYS = 30
UPCOMING_DAYS = 7  # upcoming bookings are made for this many days ahead
CUSTOMERS = 200
# Bookings per slot relative to each offering's demand curve: a full load is about 3,000 past
# bookings, which the engine replays in roughly a minute on SQLite on a small machine.
DEMAND = 0.7
SEED = 2026
# Share of the price a late cancellation gets back, per kind (the rest of the kinds: all of it).
LATE_REFUND_PERCENT = {"course": 50, "scenic": 80}

OWNER_GROUP = "商户管理员"
DESK_GROUP = "前台"
PROVIDER_GROUP = "服务人员"
YUYUE_APPS = ("tenants", "accounts", "catalog", "scheduling", "booking", "core")

Login = tuple[str, str, str]
ROLE_LABELS = {
    Role.OWNER: "owner",
    Role.FRONT_DESK: "front desk",
    Role.COACH: "coach",
    Role.DOCTOR: "doctor",
    Role.DRIVER: "driver",
}


def load_demo(*, scale: float = 1.0) -> list[Login]:
    """Create the demo (or top up its slots) and return the logins: (username, password, description).

    ``scale`` multiplies the number of customers and bookings (1.0: 200 customers and a few
    thousand past bookings); tests use a small one. The last row is the demo end user's phone.
    """
    if Merchant.objects.filter(slug__in=SLUGS.values()).exists():
        generate_slots(days=FUTURE_DAYS)
        return logins()
    with transaction.atomic():
        _Demo(scale=scale).build()
    return logins()


def logins() -> list[Login]:
    """The demo's sign-ins: the superuser, every demo staff account, and the demo end user's phone."""
    rows: list[Login] = [("admin", DEMO_PASSWORD, "superuser: everything in /admin/")]
    for kind in KINDS:
        staff = (
            Staff.objects.filter(merchant__slug=SLUGS[kind], user__username__startswith="demo-")
            .select_related("user", "merchant", "resource")
            .order_by("id")
        )
        for member in staff:
            who = f"{ROLE_LABELS.get(member.role, member.role)} · {member.merchant.name}"
            if member.resource is not None:
                who += f" · {member.resource.name}"
            rows.append((member.user.username, DEMO_PASSWORD, who))
    rows.append(("user phone", DEMO_PHONE, "demo end user: sign in on the H5 pages with this phone"))
    return rows


# --------------------------------------------------------------------------------------------
# Names and numbers
# --------------------------------------------------------------------------------------------

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴莫孔汤"
)
MALE_GIVEN = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波宇浩凯健俊帆晨阳峰建国志文斌昊然睿博轩泽宁毅诚"
FEMALE_GIVEN = "芳娜敏静丽艳娟霞燕玲婷雪慧莹琳颖倩晶欣怡悦佳彤萱雯琪瑶璐岚蕾梦婉清萍洁薇"
NICKNAMES = (
    *("晴天", "小鱼儿", "木子", "阿杰", "豆豆妈", "跑步的猫", "一只小熊", "Lily", "Kevin", "Amy", "慢慢来"),
    *("向日葵", "山海", "橙子", "老周", "小满", "布丁", "星河", "南风", "麦兜", "Echo", "Vivian", "阿宝"),
    "知足常乐",
)
# Region codes python-stdnum accepts for every birth year since 1935 (codes have validity periods):
# mostly Shanghai districts, a few from Beijing and Tianjin.
REGIONS = [
    *("310101", "310104", "310105", "310106", "310107", "310109", "310110", "310101", "310104", "310105"),
    *("110101", "110102", "110105", "110108", "120101", "120103"),
]


def _given(rng: random.Random, male: bool) -> str:
    pool = MALE_GIVEN if male else FEMALE_GIVEN
    return rng.choice(pool) + (rng.choice(pool) if rng.random() < 0.75 else "")


def _random_date(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randrange((last - first).days + 1))


def _poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclass
class _Customer:
    user: EndUser
    phone: str
    me: Person
    male: bool
    spouse: Person | None = None
    child: Person | None = None
    parent: Person | None = None

    @property
    def family(self) -> list[Person]:
        return [p for p in (self.spouse, self.child, self.parent) if p is not None]


@dataclass
class _Plan:
    """How customers use one offering: demand per slot, who comes, what happens afterwards."""

    offering: Offering
    desk: Any  # Django user who checks people in
    owner: Any  # Django user who approves
    demand: Callable[[dt.datetime, bool], float]  # expected bookings for a slot (local start, holiday)
    who: Callable[[_Customer, dt.date], dict[str, Any] | None]  # book() arguments, None: not for them
    pool: list[_Customer]
    weights: list[float]
    lead_hours: tuple[float, float]  # how long before the start people book
    cancel_rate: float = 0.06
    no_show_rate: float = 0.03
    review_rate: float = 0.35
    reviews: tuple[str, ...] = ()
    reject_reasons: tuple[str, ...] = ("名额已满，欢迎报名下一期",)
    waitlist: bool = False


@dataclass(frozen=True)
class _Habit:
    """What a customer tends to book, so that the history has the patterns real customers show
    (and recommendations have something to learn): usual times of week, a home branch of the
    yoga studio, and favourite classes (people who do yoga often do pilates too)."""

    free: frozenset[tuple[int, int]]  # (weekday, hour) when they usually book
    branch: int  # index of their home branch in a chain
    likes: dict[str, float]  # class style → how much they like it
    kinds: dict[str, float]  # kind of offering → how keen they are (their interests)

    # A slot at another time, or at the other branch, is still booked now and then.
    OFF_TIME = 0.25
    OTHER_BRANCH = 0.15
    OTHER_STYLE = 0.1


# Interests: the kinds of offering a customer keeps coming back to (one or two each); other kinds
# (but the clinic, which people need rather than choose) are booked now and then.
INTERESTS = {
    "fitness": {"course": 4.0},
    "culture": {"exhibition": 4.0, "activity": 2.0},
    "outdoors": {"scenic": 4.0, "vehicle": 2.0},
    "business": {"vehicle": 4.0},
    "family": {"activity": 3.0, "scenic": 2.0, "exhibition": 2.0},
}
OTHER_INTEREST = 0.4

# Class styles: the first choice, then what those people like as a second.
SECOND_STYLE = {"flow": (("pilates", 0.6), ("barre", 0.4)), "pilates": (("flow", 0.8), ("barre", 0.2))}
SECOND_STYLE["barre"] = (("flow", 0.5), ("pilates", 0.5))


def _hours(weekdays: Any, first: int, last: int) -> set[tuple[int, int]]:
    return {(day, hour) for day in weekdays for hour in range(first, last + 1)}


def _make_habit(rng: random.Random) -> _Habit:
    """Office workers after work (two fixed evenings) or at lunch, weekend people, daytime people;
    one or two interests; a favourite class and a second one."""
    roll = rng.random()
    if roll < 0.45:
        evenings = rng.choice([(0, 2), (1, 3), (0, 2, 4), (1, 3, 4)])
        free = _hours(evenings, 18, 21) | _hours([5], 9, 17)
    elif roll < 0.55:
        free = _hours(range(5), 11, 13) | _hours([5], 9, 12)
    elif roll < 0.8:
        free = _hours([5, 6], 8, 17)
    else:
        free = _hours(range(6), 7, 16)
    first = rng.choices(["flow", "pilates", "barre"], [5, 3, 2])[0]
    second = rng.choices(*zip(*SECOND_STYLE[first], strict=True))[0]
    kinds = {"clinic": 1.0}
    for interest in rng.sample(sorted(INTERESTS), rng.choice([1, 1, 2])):
        for kind, keen in INTERESTS[interest].items():
            kinds[kind] = max(kinds.get(kind, 0.0), keen)
    return _Habit(
        free=frozenset(free), branch=0 if rng.random() < 0.6 else 1, likes={first: 1.0, second: 0.6}, kinds=kinds
    )


# --------------------------------------------------------------------------------------------
# The builder
# --------------------------------------------------------------------------------------------


class _Demo:
    def __init__(self, *, scale: float) -> None:
        self.scale = scale
        self.rng = random.Random(SEED)
        self.now = timeutil.now()
        self.today = timeutil.today()
        self.first_day = self.today - dt.timedelta(days=HISTORY_DAYS)
        self.password = make_password(DEMO_PASSWORD)  # hashed once: PBKDF2 is slow on purpose
        self.used_ids: set[str] = set()
        self.plans: dict[int, _Plan] = {}
        self.customers: list[_Customer] = []
        self.no_shows: dict[tuple[int, int], int] = defaultdict(int)
        self.banned_customer: _Customer | None = None
        self.habits: dict[int, _Habit] = {}  # by user id
        self.styles: dict[int, tuple[str, int]] = {}  # course offering → (style, branch index)
        self._weights: dict[tuple[int, int, int], list[float]] = {}

    # --- the whole thing ----------------------------------------------------------------------

    def build(self) -> None:
        self.groups = self._groups()
        self._superuser()
        self._customers()
        self._habits()
        builders = [self._activity, self._vehicle, self._course, self._exhibition, self._scenic, self._clinic]
        plan_factories = [build() for build in builders]
        self._payment_modes()
        generate_slots(days=HISTORY_DAYS + FUTURE_DAYS, start=self.first_day)
        for make_plans in plan_factories:
            for plan in make_plans():
                self.plans[plan.offering.pk] = plan
        self._history()
        self._upcoming()
        self._arrivals_today()
        self._memberships()
        self._customer_service()
        self._backdate()

    def _payment_modes(self) -> None:
        """Prices are paid online in the sandbox cashier, except the car service, paid to the driver
        (到店支付). A late cancellation of a class or a ticket gets part of the price back."""
        for offering in Offering.objects.filter(merchant__slug__in=SLUGS.values()):
            overrides = {**offering.policy_overrides, "payment": "on_site" if offering.kind == "vehicle" else "online"}
            if offering.kind in LATE_REFUND_PERCENT:
                overrides.setdefault("late_cancel_refund_percent", LATE_REFUND_PERCENT[offering.kind])
            offering.policy_overrides = overrides
            offering.save(update_fields=["policy_overrides"])

    # --- staff --------------------------------------------------------------------------------

    def _groups(self) -> dict[str, Group]:
        perms = Permission.objects.filter(content_type__app_label__in=YUYUE_APPS)
        owner, _ = Group.objects.get_or_create(name=OWNER_GROUP)
        owner.permissions.set(perms)
        desk, _ = Group.objects.get_or_create(name=DESK_GROUP)
        desk.permissions.set(
            perms.filter(codename__startswith="view_")
            | perms.filter(content_type__app_label="booking", codename__startswith="change_")
            | perms.filter(content_type__app_label="booking", codename__startswith="add_")
        )
        provider, _ = Group.objects.get_or_create(name=PROVIDER_GROUP)
        provider.permissions.set(
            perms.filter(
                codename__in=[
                    "view_booking",
                    "view_attendee",
                    "view_slot",
                    "view_schedule",
                    "view_offering",
                    "view_resource",
                    "view_review",
                ]
            )
        )
        return {OWNER_GROUP: owner, DESK_GROUP: desk, PROVIDER_GROUP: provider}

    def _superuser(self) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            user_model.objects.create(
                username="admin", password=self.password, is_staff=True, is_superuser=True, email="admin@example.com"
            )

    def _staff(
        self, merchant: Merchant, username: str, role: str, *, name: str = "", resource: Resource | None = None
    ) -> Any:
        user_model = get_user_model()
        user = user_model.objects.create(
            username=username,
            password=self.password,
            is_staff=True,
            first_name=name,
            email=f"{username}@example.com",
        )
        group = {Role.OWNER: OWNER_GROUP, Role.FRONT_DESK: DESK_GROUP}.get(role, PROVIDER_GROUP)
        user.groups.add(self.groups[group])
        Staff.objects.create(user=user, merchant=merchant, role=role, resource=resource)
        return user

    def _merchant(self, kind: str, name: str, description: str, phone: str) -> tuple[Merchant, Any, Any]:
        merchant = Merchant.objects.create(name=name, slug=SLUGS[kind], description=description, phone=phone)
        owner = self._staff(merchant, f"demo-{kind}-owner", Role.OWNER, name="店长")
        desk = self._staff(merchant, f"demo-{kind}-desk", Role.FRONT_DESK, name="前台")
        return merchant, owner, desk

    def _schedule(
        self,
        offering: Offering,
        *,
        weekdays: Any = range(7),
        start: str,
        end: str,
        capacity: int,
        slot_minutes: int | None = None,
        resources: tuple[Resource, ...] = (),
        name: str = "",
        workdays_only: bool = False,
        price_fen: int | None = None,
        valid_from: dt.date | None = None,
        valid_until: dt.date | None = None,
    ) -> Schedule:
        schedule = Schedule.objects.create(
            offering=offering,
            name=name,
            weekdays=list(weekdays),
            workdays_only=workdays_only,
            start_time=dt.time.fromisoformat(start),
            end_time=dt.time.fromisoformat(end),
            slot_minutes=slot_minutes,
            capacity=capacity,
            price_fen=price_fen,
            valid_from=valid_from or self.first_day,
            valid_until=valid_until,
        )
        if resources:
            schedule.resources.set(resources)
        return schedule

    # --- customers ----------------------------------------------------------------------------

    def _id_number(self, birth: dt.date, male: bool) -> str:
        while True:
            order = f"{self.rng.randrange(100):02d}{self.rng.choice('13579' if male else '02468')}"
            body = f"{self.rng.choice(REGIONS)}{birth:%Y%m%d}{order}"
            number = body + ric.calc_check_digit(body + "0")
            if number not in self.used_ids:
                self.used_ids.add(number)
                return number

    def _person(self, owner: EndUser, name: str, relation: str, birth: dt.date, male: bool, **extra: Any) -> Person:
        return add_person(owner=owner, name=name, relation=relation, id_number=self._id_number(birth, male), **extra)

    def _customers(self) -> None:
        rng = self.rng
        count = max(30, round(CUSTOMERS * self.scale))
        for i in range(1, count + 1):
            phone = f"1380000{i:04d}"
            user = get_or_create_user_by_phone(phone)
            male = rng.random() < 0.45
            surname = rng.choice(SURNAMES)
            name = surname + _given(rng, male)
            birth = _random_date(rng, dt.date(1960, 1, 1), dt.date(2004, 12, 31))
            if i == 1:  # the demo account: with a spouse, a child and a parent, every rule shows
                male, name, birth = True, "陈晓明", dt.date(1988, 5, 16)
                surname = "陈"
            nickname = "晓明" if i == 1 else rng.choice([*NICKNAMES, f"{surname}先生" if male else f"{surname}女士"])
            EndUser.objects.filter(pk=user.pk).update(nickname=nickname)
            user.nickname = nickname
            me = self._person(user, name, Relation.SELF, birth, male, phone=phone)
            customer = _Customer(user=user, phone=phone, me=me, male=male)
            age = timeutil.today().year - birth.year
            if i == 1 or (age >= 26 and rng.random() < 0.45):
                spouse_male = not male
                spouse_birth = birth + dt.timedelta(days=rng.randint(-1100, 1100))
                customer.spouse = self._person(
                    user, rng.choice(SURNAMES) + _given(rng, spouse_male), Relation.SPOUSE, spouse_birth, spouse_male
                )
            youngest_parent = birth.replace(year=birth.year + 22, day=min(birth.day, 28))
            eldest_child = max(self.today - dt.timedelta(days=int(13.5 * 365)), youngest_parent)
            youngest_child = self.today - dt.timedelta(days=3 * 365 + 30)
            if i == 1 or (age <= 50 and eldest_child < youngest_child and rng.random() < 0.5):
                child_male = rng.random() < 0.5
                child_birth = _random_date(rng, eldest_child, youngest_child)
                if i == 1:
                    child_male, child_birth = False, dt.date(2018, 9, 3)
                customer.child = self._person(
                    user,
                    surname + _given(rng, child_male),
                    Relation.CHILD,
                    child_birth,
                    child_male,
                    guardian_id=me.pk,
                )
            if i == 1 or (birth.year >= 1975 and rng.random() < 0.3):
                parent_male = rng.random() < 0.5
                parent_birth = _random_date(rng, dt.date(birth.year - 34, 1, 1), dt.date(birth.year - 22, 12, 31))
                parent_name = (surname if parent_male else rng.choice(SURNAMES)) + _given(rng, parent_male)
                customer.parent = self._person(user, parent_name, Relation.PARENT, parent_birth, parent_male)
            self.customers.append(customer)
        self.banned_customer = self.customers[7]

    def _pool(
        self, *, predicate: Callable[[_Customer], bool] = lambda c: True, share: float = 1.0, regulars: int = 0
    ) -> tuple[list[_Customer], list[float]]:
        """Customers who use an offering: a share of everyone, some of them regulars, the demo user always."""
        rng = random.Random(self.rng.random())
        pool = [c for c in self.customers[1:] if predicate(c) and rng.random() < share]
        weights = [1.0] * len(pool)
        for index in rng.sample(range(len(pool)), min(regulars, len(pool))):
            weights[index] = 5.0
        if predicate(self.customers[0]):
            pool.insert(0, self.customers[0])
            weights.insert(0, 2.5)
        return pool, weights

    # --- the six merchants --------------------------------------------------------------------

    def _activity(self) -> Callable[[], list[_Plan]]:
        merchant, owner, desk = self._merchant(
            "activity",
            "梧桐里社区活动中心",
            "梧桐里街道的邻里客厅：亲子手工、读书会、健康义诊、太极晨练，居民免费报名，活动前在前台扫码签到。",
            "021-6258 3170",
        )
        branch = Branch.objects.create(
            merchant=merchant,
            name="梧桐里活动中心",
            city="上海",
            address="上海市长宁区梧桐里路 66 号 2 楼",
            phone="021-6258 3170",
        )
        name_phone = [
            {"key": "name", "label": "姓名", "type": "text", "required": True, "max_length": 30},
            {"key": "phone", "label": "手机号", "type": "phone", "required": True},
        ]
        craft = Offering.objects.create(
            merchant=merchant,
            branch=branch,
            kind="activity",
            title="亲子手工坊：周末创意时光",
            description="每周六上午，家长和孩子一起做纸艺、黏土和节日手工，材料由中心提供。"
            "适合 3–12 岁儿童，每个名额含一位家长一位孩子。",
            form_fields=[
                {"key": "name", "label": "家长姓名", "type": "text", "required": True, "max_length": 30},
                {"key": "phone", "label": "手机号", "type": "phone", "required": True},
                {"key": "child_name", "label": "孩子姓名", "type": "text", "required": True, "max_length": 30},
                {"key": "child_age", "label": "孩子年龄", "type": "number", "required": True, "min": 3, "max": 12},
                {"key": "allergy", "label": "过敏情况", "type": "text", "required": False, "max_length": 100},
            ],
            # A weekly activity: one sign-up per phone per session, not per phone forever.
            policy_overrides={"unique_answers_per": "slot"},
        )
        self._schedule(craft, weekdays=[5], start="09:30", end="11:00", capacity=20, name="周六上午")
        reading = Offering.objects.create(
            merchant=merchant,
            branch=branch,
            kind="activity",
            title="梧桐读书会",
            description="每周日下午一本好书、一壶清茶。本月共读《额尔古纳河右岸》，欢迎带上你的读书笔记。",
            form_fields=[
                *name_phone,
                {
                    "key": "progress",
                    "label": "本期书目阅读进度",
                    "type": "choice",
                    "required": True,
                    "choices": ["已读完", "读了一半", "还没开始"],
                },
                {"key": "remark", "label": "想分享的话题", "type": "text", "required": False, "max_length": 200},
            ],
            policy_overrides={"unique_answers_per": "slot"},
        )
        self._schedule(reading, weekdays=[6], start="14:30", end="16:30", capacity=25, name="周日下午")
        clinic_day = Offering.objects.create(
            merchant=merchant,
            branch=branch,
            kind="activity",
            title="社区健康义诊",
            description="联合街道社区卫生服务中心举办：量血压、测血糖、骨密度筛查和用药咨询。需实名登记，每个手机号限报名一次。",
            form_fields=[
                *name_phone,
                {"key": "id_number", "label": "身份证号", "type": "id_number", "required": True},
                {"key": "birth_date", "label": "出生日期", "type": "date", "required": True},
                {
                    "key": "concern",
                    "label": "主要咨询项目",
                    "type": "choice",
                    "required": True,
                    "choices": ["血压", "血糖", "骨关节", "眼科", "用药咨询", "其他"],
                },
                {"key": "history", "label": "既往病史", "type": "text", "required": False, "max_length": 200},
            ],
        )
        past_day = self._saturday_near(self.today - dt.timedelta(days=40))
        next_day = self._saturday_near(self.today + dt.timedelta(days=17))
        for day in (past_day, next_day):
            self._schedule(
                clinic_day, weekdays=[5], start="08:30", end="11:30", capacity=80, valid_from=day, valid_until=day
            )
        taichi = Offering.objects.create(
            merchant=merchant,
            branch=branch,
            kind="activity",
            title="太极拳晨练班",
            description="杨式太极拳二十四式，由市级非遗传承人授课。为确保安全，报名后由工作人员审核身体情况后确认。",
            form_fields=[
                *name_phone,
                {"key": "age", "label": "年龄", "type": "number", "required": True, "min": 18, "max": 90},
                {
                    "key": "experience",
                    "label": "练习经验",
                    "type": "choice",
                    "required": True,
                    "choices": ["零基础", "一年以内", "一年以上"],
                },
                {"key": "emergency_phone", "label": "紧急联系人电话", "type": "phone", "required": False},
            ],
            policy_overrides={"requires_approval": True, "unique_answers_per": "slot"},
        )
        self._schedule(taichi, weekdays=[1, 3, 5], start="07:00", end="08:00", capacity=30, name="周二四六早")

        def base_answers(c: _Customer) -> dict[str, Any]:
            return {"name": c.me.name, "phone": c.phone}

        def craft_who(c: _Customer, day: dt.date) -> dict[str, Any] | None:
            age = c.child.age_on(day) if c.child else None
            if c.child is None or age is None or not 3 <= age <= 12:
                return None
            answers = {**base_answers(c), "child_name": c.child.name, "child_age": age}
            if self.rng.random() < 0.2:
                answers["allergy"] = self.rng.choice(["无", "花生过敏", "对乳胶手套过敏"])
            return {"answers": answers}

        def reading_who(c: _Customer, day: dt.date) -> dict[str, Any] | None:
            answers = {**base_answers(c), "progress": self.rng.choice(["已读完", "已读完", "读了一半", "还没开始"])}
            if self.rng.random() < 0.3:
                answers["remark"] = self.rng.choice(["书中的自然描写", "鄂温克族的迁徙", "推荐下期书目", "第一次参加"])
            return {"answers": answers}

        def clinic_day_who(c: _Customer, day: dt.date) -> dict[str, Any] | None:
            answers = {
                **base_answers(c),
                "id_number": c.me.id_number,
                "birth_date": c.me.birth_date.isoformat() if c.me.birth_date else None,
                "concern": self.rng.choice(["血压", "血压", "血糖", "骨关节", "眼科", "用药咨询", "其他"]),
            }
            if self.rng.random() < 0.3:
                answers["history"] = self.rng.choice(["高血压五年", "二型糖尿病", "腰椎间盘突出", "无"])
            return {"answers": answers}

        def taichi_who(c: _Customer, day: dt.date) -> dict[str, Any] | None:
            age = c.me.age_on(day) or 30
            answers = {
                **base_answers(c),
                "age": age,
                "experience": self.rng.choice(["零基础", "一年以内", "一年以上"]),
            }
            if self.rng.random() < 0.3:
                answers["emergency_phone"] = self.rng.choice(self.customers).phone
            return {"answers": answers}

        def build() -> list[_Plan]:
            everyone = self._pool(share=0.6, regulars=15)
            parents = self._pool(predicate=lambda c: c.child is not None, regulars=8)
            elders = self._pool(predicate=lambda c: _born_before(c.me, 1980) or c.parent is not None, regulars=10)
            common = {"owner": owner, "desk": desk, "lead_hours": (2.0, 24.0 * 12), "no_show_rate": 0.05}
            return [
                _Plan(
                    offering=craft,
                    demand=lambda start, holiday: 11.0,
                    who=craft_who,
                    pool=parents[0],
                    weights=parents[1],
                    reviews=(
                        "孩子玩得很开心，做了一个小灯笼带回家",
                        "老师很有耐心，材料也很齐全",
                        "亲子时光很温馨，下次还来",
                    ),
                    **common,
                ),
                _Plan(
                    offering=reading,
                    demand=lambda start, holiday: 10.0,
                    who=reading_who,
                    pool=everyone[0],
                    weights=everyone[1],
                    reviews=("读书会氛围很好，认识了新朋友", "主持人引导得很好，讨论很热烈", "茶和点心都很用心"),
                    **common,
                ),
                _Plan(
                    offering=clinic_day,
                    demand=lambda start, holiday: 40.0,
                    who=clinic_day_who,
                    pool=elders[0],
                    weights=elders[1],
                    reviews=(
                        "医生很耐心，量了血压还讲了饮食注意",
                        "家门口就能看医生，太方便了",
                        "排队有序，志愿者很热情",
                    ),
                    **common,
                ),
                _Plan(
                    offering=taichi,
                    demand=lambda start, holiday: 10.0 if start.weekday() == 5 else 6.0,
                    who=taichi_who,
                    pool=elders[0],
                    weights=elders[1],
                    reviews=("老师动作示范很标准", "每天早上练一练，精神好多了", "氛围很好，大家互相纠正动作"),
                    reject_reasons=("本期名额已满，已为您登记下一期", "请先到前台补充健康声明"),
                    **common,
                ),
            ]

        return build

    def _vehicle(self) -> Callable[[], list[_Plan]]:
        merchant, owner, desk = self._merchant(
            "vehicle",
            "申程商务用车",
            "上海本地商务用车服务：浦东、虹桥机场接送，一日包车，企业公务用车。持证专职司机，车辆每日消毒。",
            "400-820-6688",
        )
        branch = Branch.objects.create(
            merchant=merchant,
            name="虹桥调度中心",
            city="上海",
            address="上海市闵行区申滨南路 1188 号 B1 停车场",
            phone="021-5410 6688",
        )
        cars = [
            ("别克 GL8 商务车", 7, "沪A·D12345"),
            ("大众帕萨特", 4, "沪A·K7Q28"),
            ("丰田埃尔法", 6, "沪A·F36688"),
            ("宇通 19 座中巴", 19, "沪B·09876D"),
        ]
        vehicles = [
            Resource.objects.create(
                merchant=merchant, branch=branch, type=ResourceType.VEHICLE, name=n, seats=s, plate=p, title="自营车辆"
            )
            for n, s, p in cars
        ]
        people = [
            ("周国强", "金牌司机", "驾龄 18 年，熟悉沪上各大机场与会展中心，零事故记录。"),
            ("吴海涛", "资深司机", "退伍军人，驾驶平稳，会基础英语交流。"),
            ("郑建平", "商务车队长", "负责企业客户接待，擅长长途与多点行程安排。"),
            ("钱志明", "大客车司机", "持 A1 驾照，长期承接会议会展与团建用车。"),
        ]
        drivers = []
        for n, (name, title, bio) in enumerate(people, start=1):
            driver = Resource.objects.create(
                merchant=merchant, branch=branch, type=ResourceType.DRIVER, name=name, title=title, bio=bio
            )
            drivers.append(driver)
            self._staff(merchant, f"demo-vehicle-driver{n}", Role.DRIVER, name=name, resource=driver)
        trip_fields = [
            {"key": "pickup", "label": "上车地点", "type": "text", "required": True, "max_length": 100},
            {"key": "destination", "label": "目的地", "type": "text", "required": True, "max_length": 100},
            {"key": "contact_phone", "label": "联系电话", "type": "phone", "required": True},
        ]
        airport = Offering.objects.create(
            merchant=merchant,
            branch=branch,
            kind="vehicle",
            title="机场接送（浦东 / 虹桥）",
            description="市区与浦东、虹桥机场之间一口价接送，航班延误免费等待 60 分钟，含高速与停车费。",
            price_fen=19900,
            form_fields=[
                {"key": "flight_no", "label": "航班号", "type": "text", "required": True, "max_length": 10},
                *trip_fields,
                {"key": "luggage", "label": "行李件数", "type": "number", "required": False, "min": 0, "max": 10},
            ],
        )
        airport.resources.set([vehicles[0], vehicles[1], drivers[0], drivers[1]])
        for car, driver in ((vehicles[0], drivers[0]), (vehicles[1], drivers[1])):
            self._schedule(
                airport,
                start="06:00",
                end="22:00",
                slot_minutes=120,
                capacity=1,
                resources=(car, driver),
                name=f"{car.name} · {driver.name}",
            )
        charter = Offering.objects.create(
            merchant=merchant,
            branch=branch,
            kind="vehicle",
            title="一日包车（8 小时 / 100 公里）",
            description="商务接待、旅游观光、婚庆用车。8 小时 100 公里内一口价，超时超公里按标准另计。",
            price_fen=128000,
            form_fields=[
                *trip_fields,
                {
                    "key": "purpose",
                    "label": "用车用途",
                    "type": "choice",
                    "required": True,
                    "choices": ["商务接待", "旅游观光", "婚庆", "会议会展", "其他"],
                },
            ],
        )
        charter.resources.set([vehicles[2], vehicles[3], drivers[2], drivers[3]])
        self._schedule(
            charter,
            weekdays=[5, 6],
            start="09:00",
            end="17:00",
            capacity=1,
            resources=(vehicles[2], drivers[2]),
            name="埃尔法周末包车",
        )
        self._schedule(
            charter,
            start="08:00",
            end="18:00",
            capacity=1,
            resources=(vehicles[3], drivers[3]),
            price_fen=180000,
            name="中巴包车",
        )
        company = Offering.objects.create(
            merchant=merchant,
            branch=branch,
            kind="vehicle",
            title="企业公务用车",
            description="签约企业员工的公务出行，费用月结。提交后由调度审核，审核通过即派车。",
            form_fields=[
                {"key": "company", "label": "单位名称", "type": "text", "required": True, "max_length": 60},
                *trip_fields,
                {"key": "reason", "label": "用车事由", "type": "text", "required": True, "max_length": 100},
                {"key": "cost_center", "label": "成本中心编号", "type": "text", "required": False, "max_length": 20},
            ],
            policy_overrides={"requires_approval": True},
        )
        company.resources.set([vehicles[2], drivers[2]])
        for start, end in (("08:30", "12:00"), ("13:30", "17:30")):
            self._schedule(
                company,
                weekdays=range(5),
                start=start,
                end=end,
                capacity=1,
                resources=(vehicles[2], drivers[2]),
                name=f"工作日 {start}",
            )

        places = [
            "静安区南京西路 1266 号",
            "浦东新区世纪大道 100 号",
            "徐汇区漕溪北路 398 号",
            "长宁区延安西路 2201 号",
            "杨浦区五角场万达广场",
            "闵行区虹梅路 3333 号",
            "国家会展中心（上海）北门",
        ]
        airports = ["浦东国际机场 T1", "浦东国际机场 T2", "虹桥国际机场 T2", "虹桥火车站"]
        flights = ["MU5101", "CA1858", "HO1252", "FM9312", "CZ3524", "MU5138", "9C8856", "HU7606"]

        def party(c: _Customer, most: int) -> int:
            return min(most, 1 + len(c.family) if self.rng.random() < 0.5 else self.rng.randint(1, 3))

        def airport_who(c: _Customer, day: dt.date) -> dict[str, Any] | None:
            to_airport = self.rng.random() < 0.5
            place, port = self.rng.choice(places), self.rng.choice(airports)
            answers = {
                "flight_no": self.rng.choice(flights),
                "pickup": place if to_airport else port,
                "destination": port if to_airport else place,
                "contact_phone": c.phone,
            }
            if self.rng.random() < 0.6:
                answers["luggage"] = self.rng.randint(0, 4)
            return {"party_size": party(c, 4), "answers": answers}

        def charter_who(c: _Customer, day: dt.date) -> dict[str, Any] | None:
            purpose = self.rng.choice(["商务接待", "旅游观光", "旅游观光", "婚庆", "会议会展", "其他"])
            answers = {
                "pickup": self.rng.choice(places),
                "destination": self.rng.choice(
                    ["朱家角古镇", "迪士尼度假区", "苏州园区", "国家会展中心（上海）", "市区多点"]
                ),
                "contact_phone": c.phone,
                "purpose": purpose,
            }
            return {"party_size": party(c, 6), "answers": answers}

        companies = ["沪联信息科技有限公司", "东浦国际贸易有限公司", "申江建筑设计院", "启明医疗器械有限公司"]

        def company_who(c: _Customer, day: dt.date) -> dict[str, Any] | None:
            answers = {
                "company": self.rng.choice(companies),
                "pickup": self.rng.choice(places),
                "destination": self.rng.choice(places),
                "contact_phone": c.phone,
                "reason": self.rng.choice(["客户拜访", "政府部门办事", "接待来访专家", "项目现场勘查"]),
            }
            if self.rng.random() < 0.5:
                answers["cost_center"] = f"CC-{self.rng.randint(1000, 9999)}"
            return {"party_size": self.rng.randint(1, 3), "answers": answers}

        reviews = (
            "司机准时到达，车内干净整洁",
            "师傅开车很稳，还帮忙搬行李",
            "航班延误也一直在等，很贴心",
            "车况很好，服务专业",
        )

        def airport_demand(start: dt.datetime, holiday: bool) -> float:
            busy = start.hour in (6, 8, 16, 18)
            return (0.22 if busy else 0.12) * (1.3 if start.weekday() >= 4 or holiday else 1.0)

        def build() -> list[_Plan]:
            pool = self._pool(share=0.4, regulars=8)
            business = self._pool(share=0.15, regulars=4)
            common = {"owner": owner, "desk": desk, "no_show_rate": 0.01, "cancel_rate": 0.05, "reviews": reviews}
            return [
                _Plan(
                    offering=airport,
                    demand=airport_demand,
                    who=airport_who,
                    pool=pool[0],
                    weights=pool[1],
                    lead_hours=(3.0, 24.0 * 10),
                    **common,
                ),
                _Plan(
                    offering=charter,
                    demand=lambda start, holiday: 0.45 if start.weekday() >= 5 or holiday else 0.15,
                    who=charter_who,
                    pool=pool[0],
                    weights=pool[1],
                    lead_hours=(24.0, 24.0 * 20),
                    **common,
                ),
                _Plan(
                    offering=company,
                    demand=lambda start, holiday: 0.35,
                    who=company_who,
                    pool=business[0],
                    weights=business[1],
                    lead_hours=(4.0, 24.0 * 5),
                    reject_reasons=("该时段车辆已安排重要接待", "请由部门负责人提交申请"),
                    **common,
                ),
            ]

        return build

    def _course(self) -> Callable[[], list[_Plan]]:
        merchant, owner, desk = self._merchant(
            "course",
            "一念瑜伽普拉提",
            "城市里的安静角落。小班教学（每班不超过 12 人），流瑜伽、普拉提、芭蕾塑形，单次课 99 元起。"
            "开课前 6 小时可免费取消，之后取消扣 10 积分。",
            "021-6288 9900",
        )
        jingan = Branch.objects.create(
            merchant=merchant,
            name="静安寺店",
            city="上海",
            address="上海市静安区愚园东路 128 号 3 楼",
            phone="021-6288 9901",
        )
        xuhui = Branch.objects.create(
            merchant=merchant,
            name="徐汇滨江店",
            city="上海",
            address="上海市徐汇区云锦滨江路 560 号 2 楼",
            phone="021-6288 9902",
        )
        coach_rows = [
            ("林晓雯", "高级瑜伽导师", "RYT-500 认证，十年教学经验，擅长流瑜伽与阴瑜伽，课堂节奏舒缓细致。"),
            ("陈思远", "普拉提认证教练", "国际普拉提认证教练，前现代舞演员，专注核心力量与体态矫正。"),
            ("苏曼", "芭蕾塑形主教练", "舞蹈学院芭蕾专业毕业，擅长把杆训练与芭蕾塑形，也带流瑜伽课。"),
        ]
        coaches = []
        for n, (name, title, bio) in enumerate(coach_rows, start=1):
            coach = Resource.objects.create(merchant=merchant, type=ResourceType.COACH, name=name, title=title, bio=bio)
            coaches.append(coach)
            self._staff(merchant, f"demo-course-coach{n}", Role.COACH, name=name, resource=coach)
        lin, chen, su = coaches
        classes = {
            "flow": ("流瑜伽", 9900, "跟随呼吸串联体式，提升柔韧与平衡，适合有一定基础的学员。"),
            "pilates": ("普拉提垫上课", 12800, "以核心为中心的控制训练，改善体态、缓解腰背不适。"),
            "barre": ("芭蕾塑形 Barre", 11800, "结合芭蕾把杆与普拉提的小肌群训练，线条紧致、姿态挺拔。"),
        }
        offerings: dict[tuple[str, str], Offering] = {}
        for branch in (jingan, xuhui):
            for code, (title, price, text) in classes.items():
                offering = Offering.objects.create(
                    merchant=merchant,
                    branch=branch,
                    kind="course",
                    title=f"{title}（{branch.name}）",
                    description=text + " 单次课价格，请提前 10 分钟到店。",
                    price_fen=price,
                )
                offering.resources.set({"flow": [lin, su], "pilates": [chen], "barre": [su]}[code])
                offerings[(branch.name, code)] = offering
                self.styles[offering.pk] = (code, 0 if branch == jingan else 1)
        # The timetable: each coach teaches at both branches, never at overlapping times, and with at
        # least an hour between classes at different branches.
        mon_wed, tue_thu = [0, 2], [1, 3]
        timetable = [
            (jingan, "flow", mon_wed, "19:00", "20:00", lin, 12),
            (xuhui, "flow", tue_thu, "19:00", "20:00", lin, 10),
            (xuhui, "flow", [0, 2, 4], "12:15", "13:00", lin, 10),
            (jingan, "flow", [5], "10:00", "11:00", lin, 12),
            (xuhui, "flow", [6], "10:00", "11:00", lin, 10),
            (xuhui, "pilates", mon_wed, "19:00", "20:00", chen, 10),
            (jingan, "pilates", tue_thu, "19:00", "20:00", chen, 12),
            (jingan, "pilates", [5], "14:00", "15:00", chen, 12),
            (xuhui, "pilates", [5], "16:30", "17:30", chen, 10),
            (jingan, "barre", mon_wed, "20:15", "21:15", su, 12),
            (xuhui, "barre", tue_thu, "20:15", "21:15", su, 10),
            (jingan, "flow", [4], "18:00", "19:00", su, 12),
            (xuhui, "barre", [4], "20:15", "21:15", su, 10),
            (jingan, "barre", [6], "15:00", "16:00", su, 12),
        ]
        _check_timetable(timetable)
        for branch, code, weekdays, start, end, coach, capacity in timetable:
            self._schedule(
                offerings[(branch.name, code)],
                weekdays=weekdays,
                start=start,
                end=end,
                capacity=capacity,
                resources=(coach,),
                name=f"{coach.name} {start}",
            )

        def demand_at(branch: Branch) -> Callable[[dt.datetime, bool], float]:
            """Weekday evenings are the busy time, more so in town (静安) than by the river."""
            busy = 14.0 if branch == jingan else 5.0

            def demand(start: dt.datetime, holiday: bool) -> float:
                if start.weekday() >= 5 or holiday:
                    return 5.0 if start.hour < 12 else 3.5
                if start.hour < 14:
                    return 2.5
                return busy * 0.6 if start.weekday() == 4 else busy

            return demand

        def build() -> list[_Plan]:
            pool = self._pool(share=0.45, regulars=30)
            return [
                _Plan(
                    offering=offering,
                    owner=owner,
                    desk=desk,
                    demand=demand_at(offering.branch),
                    who=lambda c, day: {},
                    pool=pool[0],
                    weights=pool[1],
                    lead_hours=(1.0, 24.0 * 6),
                    cancel_rate=0.09,
                    no_show_rate=0.03,
                    review_rate=0.3,
                    reviews=(
                        "老师讲解很细致，动作纠正到位",
                        "强度适中，出了一身汗很舒服",
                        "环境干净，音乐也很放松",
                        "教练很有耐心，新手也能跟上",
                        "下班来上一节，压力全消",
                        "小班课，老师能照顾到每个人",
                    ),
                    waitlist=True,
                )
                for offering in offerings.values()
            ]

        return build

    def _exhibition(self) -> Callable[[], list[_Plan]]:
        merchant, owner, desk = self._merchant(
            "exhibition",
            "浦江当代美术馆",
            "坐落于浦江滨河步道旁的公益美术馆，常设展免费分时段预约，特展需购票。周一闭馆（法定节假日除外）。"
            "实名预约，凭二维码入馆。",
            "021-5368 2100",
        )
        Branch.objects.create(
            merchant=merchant,
            name="美术馆本馆",
            city="上海",
            address="上海市黄浦区浦江滨河路 1200 号",
            phone="021-5368 2100",
        )
        permanent = Offering.objects.create(
            merchant=merchant,
            kind="exhibition",
            title="常设展：江南文脉——馆藏书画精品",
            description="精选馆藏明清至近现代江南书画一百余件。免费参观，每小时一个入场时段，每人每天限约一次。",
        )
        special = Offering.objects.create(
            merchant=merchant,
            kind="exhibition",
            title="特展：光影之间——印象派与现代绘画",
            description="汇集海内外机构借展的印象派及后印象派作品 60 余件。门票 80 元，1.3 米以下儿童须由成人陪同。",
            price_fen=8000,
        )
        self._schedule(
            permanent, weekdays=range(1, 7), start="09:00", end="17:00", slot_minutes=60, capacity=200, name="分时入馆"
        )
        self._schedule(
            special, weekdays=range(1, 7), start="10:00", end="17:00", slot_minutes=60, capacity=120, name="特展分时"
        )
        ClosedDate.objects.create(
            merchant=merchant,
            offering=special,
            date=self.today + dt.timedelta(days=12),
            reason="特展换展布展，暂停开放",
        )

        def demand_for(weekday_rate: float, weekend_rate: float) -> Callable[[dt.datetime, bool], float]:
            def demand(start: dt.datetime, holiday: bool) -> float:
                rate = weekend_rate if start.weekday() >= 5 else weekday_rate
                if holiday:
                    rate = weekend_rate * 2.2
                return rate * (1.4 if 10 <= start.hour <= 14 else 0.8)

            return demand

        def build() -> list[_Plan]:
            pool = self._pool(share=0.8, regulars=10)
            common = {
                "owner": owner,
                "desk": desk,
                "who": self._group_who,
                "pool": pool[0],
                "weights": pool[1],
                "lead_hours": (2.0, 24.0 * 6),
                "cancel_rate": 0.05,
                "no_show_rate": 0.04,
            }
            return [
                _Plan(
                    offering=permanent,
                    demand=demand_for(0.15, 0.5),
                    reviews=("分时段预约，看展不拥挤", "书画精品很多，值得慢慢看", "馆内安静，讲解器很专业"),
                    **common,
                ),
                _Plan(
                    offering=special,
                    demand=demand_for(0.12, 0.45),
                    reviews=("特展很震撼，莫奈的睡莲太美了", "带孩子来看，很有收获", "票价合理，展品质量很高"),
                    **common,
                ),
            ]

        return build

    def _scenic(self) -> Callable[[], list[_Plan]]:
        merchant, owner, desk = self._merchant(
            "scenic",
            "青岚山风景区",
            "国家 AAAA 级景区，竹海、云瀑与千年古道。实行分时段实名预约，节假日限流；"
            "每个身份证每天限预约一次，儿童须由成人陪同。",
            "0571-8899 1234",
        )
        Branch.objects.create(
            merchant=merchant,
            name="南大门游客中心",
            city="杭州",
            address="浙江省杭州市西湖区青岚镇观云路 1 号",
            phone="0571-8899 1234",
        )
        ticket = Offering.objects.create(
            merchant=merchant,
            kind="scenic",
            title="青岚山门票（含景区环保车）",
            description="成人票 60 元，含景区内环保车。上午场 07:30–12:00 入园，下午场 12:00–16:30 入园，"
            "凭身份证或二维码检票。",
            price_fen=6000,
        )
        self._schedule(ticket, start="07:30", end="12:00", capacity=2000, name="上午场")
        self._schedule(ticket, start="12:00", end="16:30", capacity=2000, name="下午场")

        def demand(start: dt.datetime, holiday: bool) -> float:
            morning = start.hour < 12
            if holiday:
                return 14.0 if morning else 7.0
            if start.weekday() >= 5:
                return 5.0 if morning else 2.5
            return 1.0 if morning else 0.6

        def build() -> list[_Plan]:
            pool = self._pool(share=0.85, regulars=5)
            return [
                _Plan(
                    offering=ticket,
                    owner=owner,
                    desk=desk,
                    demand=demand,
                    who=self._group_who,
                    pool=pool[0],
                    weights=pool[1],
                    lead_hours=(3.0, 24.0 * 6),
                    cancel_rate=0.06,
                    no_show_rate=0.03,
                    reviews=(
                        "风景很美，分时段入园一点也不挤",
                        "山顶云海太壮观了",
                        "扫码入园很快，环保车班次多",
                        "带孩子来玩很合适，步道好走",
                        "节假日人有点多，但秩序不错",
                    ),
                )
            ]

        return build

    def _clinic(self) -> Callable[[], list[_Plan]]:
        merchant, owner, desk = self._merchant(
            "clinic",
            "安和综合门诊部",
            "医保定点综合门诊部，开设内科、儿科、口腔科。实名预约挂号，每人每天每个科室限挂一个号；"
            "14 岁以下儿童需由监护人预约；90 天内爽约 3 次将暂停预约 90 天。",
            "021-6433 5120",
        )
        Branch.objects.create(
            merchant=merchant, name="门诊部", city="上海", address="上海市徐汇区安和路 215 号", phone="021-6433 5120"
        )
        doctor_rows = [
            ("内科", "王建国", "主任医师", 5000, "从事内科临床 30 年，擅长高血压、糖尿病等慢病管理。"),
            ("内科", "刘敏", "副主任医师", 3000, "擅长呼吸道感染、慢性咳嗽与消化系统常见病。"),
            ("儿科", "张丽华", "主任医师", 5000, "儿科专家，擅长小儿呼吸、消化疾病及生长发育评估。"),
            ("儿科", "赵晨", "副主任医师", 3000, "擅长儿童过敏性疾病、哮喘与疫苗接种咨询。"),
            ("口腔科", "孙伟", "副主任医师", 3000, "擅长根管治疗、儿童早期矫正与牙周治疗。"),
        ]
        plans: list[tuple[Offering, str]] = []
        for n, (department, name, title, fee, bio) in enumerate(doctor_rows, start=1):
            doctor = Resource.objects.create(
                merchant=merchant, type=ResourceType.DOCTOR, name=name, title=title, bio=bio
            )
            self._staff(merchant, f"demo-clinic-doctor{n}", Role.DOCTOR, name=name, resource=doctor)
            offering = Offering.objects.create(
                merchant=merchant,
                kind="clinic",
                title=f"{department} · {name} {title}",
                description=f"{department}{title}门诊，挂号费 {fee // 100} 元。{bio}",
                price_fen=fee,
                limit_group=department,
            )
            offering.resources.set([doctor])
            self._schedule(
                offering,
                start="08:00",
                end="12:00",
                slot_minutes=60,
                capacity=5,
                resources=(doctor,),
                workdays_only=True,
                name="上午门诊",
            )
            self._schedule(
                offering,
                start="13:30",
                end="16:30",
                slot_minutes=60,
                capacity=4,
                resources=(doctor,),
                workdays_only=True,
                name="下午门诊",
            )
            plans.append((offering, department))

        symptoms = {
            "内科": ["咳嗽一周", "血压偏高复诊", "胃胀反酸", "头晕乏力", "配降糖药"],
            "儿科": ["发烧两天", "咳嗽有痰", "腹泻", "湿疹复诊", "生长发育咨询"],
            "口腔科": ["牙痛", "洗牙", "智齿发炎", "儿童涂氟", "牙龈出血"],
        }

        def who_for(department: str) -> Callable[[_Customer, dt.date], dict[str, Any] | None]:
            def who(c: _Customer, day: dt.date) -> dict[str, Any] | None:
                if department == "儿科":
                    person = c.child
                elif department == "内科":
                    person = c.parent if c.parent is not None and self.rng.random() < 0.35 else c.me
                else:
                    person = self.rng.choice([c.me, c.me, *c.family])
                if person is None:
                    return None
                answers = {"symptoms": self.rng.choice(symptoms[department])} if self.rng.random() < 0.6 else {}
                return {"person_ids": [person.pk], "answers": answers}

            return who

        def demand(start: dt.datetime, holiday: bool) -> float:
            rate = 0.35 if start.hour < 12 else 0.2
            if start.weekday() == 0 and start.hour < 12:
                rate *= 2.2  # Monday mornings
            return rate

        def build() -> list[_Plan]:
            everyone = self._pool(share=1.0)
            parents = self._pool(predicate=lambda c: c.child is not None)
            return [
                _Plan(
                    offering=offering,
                    owner=owner,
                    desk=desk,
                    demand=demand,
                    who=who_for(department),
                    pool=parents[0] if department == "儿科" else everyone[0],
                    weights=parents[1] if department == "儿科" else everyone[1],
                    lead_hours=(2.0, 24.0 * 6),
                    cancel_rate=0.07,
                    no_show_rate=0.02,
                    review_rate=0.3,
                    reviews=(
                        "医生很耐心，解释得很清楚",
                        "按预约时段就诊，几乎不用排队",
                        "挂号方便，流程顺畅",
                        "候诊时间稍长，总体满意",
                        "医生经验丰富，复诊很放心",
                    ),
                )
                for offering, department in plans
            ]

        return build

    def _group_who(self, c: _Customer, day: dt.date) -> dict[str, Any] | None:
        """A real-name party: the customer plus some of the family (children only with an adult)."""
        people = [c.me] + [p for p in c.family if self.rng.random() < 0.55]
        return {"person_ids": [p.pk for p in people[:5]]}

    def _saturday_near(self, day: dt.date) -> dt.date:
        return day + dt.timedelta(days=(5 - day.weekday()) % 7)

    # --- booking --------------------------------------------------------------------------------

    def _slots(self, first: dt.datetime, last: dt.datetime) -> list[Slot]:
        return list(
            Slot.objects.filter(offering_id__in=list(self.plans), start__gte=first, start__lt=last)
            .only("id", "offering_id", "start", "end", "capacity", "is_holiday")
            .order_by("start", "id")
        )

    def _booking_time(self, plan: _Plan, slot: Slot, *, latest: dt.datetime) -> dt.datetime | None:
        """When someone booked this slot: some hours before, inside the booking window, in waking hours."""
        policy = plan.offering.policy
        opens = engine.booking_opens_at(slot, policy)
        last = min(engine.booking_closes_at(slot, policy), latest) - dt.timedelta(minutes=1)
        lo, hi = plan.lead_hours
        moment = slot.start - dt.timedelta(hours=self.rng.uniform(lo, hi))
        if moment > last:  # upcoming slots: booked some time up to now
            moment = last - (last - max(slot.start - dt.timedelta(hours=hi), last - dt.timedelta(days=3))) * (
                self.rng.random() ** 2
            )
        local = moment.astimezone(timeutil.local_zone())
        if local.hour < 7:  # people book while awake
            moment += dt.timedelta(hours=self.rng.uniform(7 - local.hour, 23 - local.hour))
        if opens is not None and moment < opens:
            # Popular days go in the first minutes after release.
            moment = opens + dt.timedelta(minutes=self.rng.uniform(0.2, 90))
        moment = min(moment, last)
        if opens is not None and moment < opens:
            return None
        return moment

    def _book_slot(self, plan: _Plan, slot: Slot, expected: float, *, latest: dt.datetime) -> None:
        local = slot.start.astimezone(timeutil.local_zone())
        attempts = _poisson(self.rng, expected * DEMAND * self.scale)
        booked: set[int] = set()
        for _ in range(attempts):
            customer = self.rng.choices(plan.pool, self._habit_weights(plan, local))[0]
            args = plan.who(customer, local.date())
            if args is None:
                continue
            moment = self._booking_time(plan, slot, latest=latest)
            if moment is None:
                continue
            try:
                engine.book(user=customer.user, slot_id=slot.pk, now=moment, **args)
                booked.add(customer.user.pk)
            except DomainError as exc:
                if (
                    exc.code == "slot_full"
                    and plan.waitlist
                    and customer.user.pk not in booked
                    and self.rng.random() < 0.4
                ):
                    with contextlib.suppress(DomainError):
                        engine.join_waitlist(user=customer.user, slot_id=slot.pk, now=moment, **args)

    def _habits(self) -> None:
        """Habits come from their own random sequence, so the rest of the demo stays as it was."""
        rng = random.Random(SEED + 1)
        for customer in self.customers:
            self.habits[customer.user.pk] = _make_habit(rng)
        # The demo account: Monday and Wednesday evenings at 静安寺店, yoga first, pilates second.
        self.habits[self.customers[0].user.pk] = _Habit(
            free=frozenset(_hours((0, 2), 18, 21) | _hours([5], 9, 17)),
            branch=0,
            likes={"flow": 1.0, "pilates": 0.6},
            kinds={"course": 4.0, "exhibition": 4.0, "activity": 2.0, "clinic": 1.0},
        )

    def _habit_weights(self, plan: _Plan, local: dt.datetime) -> list[float]:
        """The plan's customer weights for a slot at this local time, times how well it fits their habits."""
        key = (plan.offering.pk, local.weekday(), local.hour)
        if key not in self._weights:
            style = self.styles.get(plan.offering.pk)
            weights = []
            for customer, weight in zip(plan.pool, plan.weights, strict=True):
                habit = self.habits[customer.user.pk]
                if (local.weekday(), local.hour) not in habit.free:
                    weight *= _Habit.OFF_TIME
                weight *= habit.kinds.get(plan.offering.kind, OTHER_INTEREST)
                if style is not None:
                    weight *= habit.likes.get(style[0], _Habit.OTHER_STYLE)
                    weight *= 1.0 if style[1] == habit.branch else _Habit.OTHER_BRANCH
                weights.append(weight)
            self._weights[key] = weights
        return self._weights[key]

    def _history(self) -> None:
        zone = timeutil.local_zone()
        slots = self._slots(
            timeutil.local_datetime(self.first_day, dt.time.min), timeutil.local_datetime(self.today, dt.time.min)
        )
        by_day: dict[dt.date, list[Slot]] = defaultdict(list)
        for slot in slots:
            by_day[slot.start.astimezone(zone).date()].append(slot)
        for day in sorted(by_day):
            day_slots = by_day[day]
            with transaction.atomic():
                for slot in day_slots:
                    plan = self.plans[slot.offering_id]
                    local = slot.start.astimezone(zone)
                    self._book_slot(plan, slot, plan.demand(local, slot.is_holiday), latest=slot.start)
                self._play_out(day_slots)

    def _play_out(self, slots: list[Slot]) -> None:
        """Approvals, payments, cancellations, check-ins, no-shows, completion and reviews of past slots."""
        slot_ids = [s.pk for s in slots]
        ends = {s.pk: s.end for s in slots}
        handled: set[int] = set()
        checked_in: list[Booking] = []
        while True:  # cancellations can promote people from the waitlist: handle them too
            batch = list(
                Booking.objects.filter(slot_id__in=slot_ids)
                .exclude(pk__in=handled)
                .select_related("slot", "offering", "merchant", "user")
                .order_by("slot__start", "id")
            )
            if not batch:
                break
            for booking in batch:
                handled.add(booking.pk)
                if self._live_through(booking):
                    checked_in.append(booking)
        for entry in WaitlistEntry.objects.filter(slot_id__in=slot_ids, status=WaitlistStatus.WAITING):
            engine.leave_waitlist(entry=entry)  # the class took place without them
        for end in sorted({ends[b.slot_id] for b in checked_in}):
            engine.complete_finished(now=end + dt.timedelta(minutes=self.rng.randint(1, 10)))
        for booking in Booking.objects.filter(
            pk__in=[b.pk for b in checked_in], status=Status.COMPLETED
        ).select_related("slot", "user"):
            plan = self.plans[booking.offering_id]
            if booking.user_id == self.customers[0].user.pk or self.rng.random() < plan.review_rate:
                self._review(plan, booking)

    def _settle(
        self, booking: Booking, plan: _Plan, moment: dt.datetime, *, leave_open: bool = False
    ) -> dt.datetime | None:
        """Approval and payment: returns when the booking became confirmed, None if it did not."""
        slot = booking.slot
        if booking.status == Status.PENDING_APPROVAL:
            moment = min(moment + dt.timedelta(hours=self.rng.uniform(0.3, 20)), slot.start - dt.timedelta(minutes=20))
            moment = max(moment, booking.created_at + dt.timedelta(minutes=1))
            if leave_open and moment > self.now:
                return None
            if self.rng.random() < 0.08:
                engine.reject(
                    booking=booking, staff=plan.owner, reason=self.rng.choice(plan.reject_reasons), now=moment
                )
                return None
            booking = engine.approve(booking=booking, staff=plan.owner, now=moment)
        if booking.status == Status.PENDING_PAYMENT:
            if not leave_open and booking.user_id != self.customers[0].user.pk and self.rng.random() < 0.03:
                assert booking.hold_expires_at is not None
                engine.expire_hold(booking=booking, now=booking.hold_expires_at + dt.timedelta(minutes=1))
                return None
            moment += dt.timedelta(minutes=self.rng.uniform(0.5, 8))
            if leave_open and moment > self.now:
                return None
            payments.record_sandbox_payment(booking=booking, now=moment)  # paid in the sandbox cashier
            booking.refresh_from_db()
        return moment if booking.status == Status.CONFIRMED else None

    def _live_through(self, booking: Booking) -> bool:
        """Take one past booking to its end; True if it was checked in."""
        plan = self.plans[booking.offering_id]
        slot = booking.slot
        moment = self._settle(booking, plan, booking.created_at)
        if moment is None:
            return False
        roll = self.rng.random()
        if (
            roll < plan.cancel_rate
            and booking.user_id != self.customers[0].user.pk
            and self._cancel(booking, slot, moment)
        ):
            return False
        customer_key = (booking.user_id, booking.merchant_id)
        forced = (
            self.banned_customer is not None
            and booking.user_id == self.banned_customer.user.pk
            and booking.offering.policy.no_show_ban is not None
        )
        if forced or (roll < plan.cancel_rate + plan.no_show_rate and self._may_no_show(booking, customer_key)):
            self.no_shows[customer_key] += 1
            engine.mark_no_show(
                booking=booking, staff=plan.desk, now=slot.end + dt.timedelta(minutes=self.rng.randint(5, 60))
            )
            return False
        length = (slot.end - slot.start).total_seconds() / 60
        arrive = slot.start + dt.timedelta(minutes=self.rng.uniform(-25, min(length * 0.5, 150)))
        arrive = min(max(arrive, moment + dt.timedelta(minutes=1)), slot.end - dt.timedelta(minutes=1))
        engine.check_in(voucher=engine.voucher_for(booking), staff=plan.desk, merchant=booking.merchant, now=arrive)
        return True

    def _may_no_show(self, booking: Booking, key: tuple[int, int]) -> bool:
        """No-shows are spread out so that only the one intended customer gets banned."""
        if booking.user_id == self.customers[0].user.pk:
            return False
        rule = booking.offering.policy.no_show_ban
        return rule is None or self.no_shows[key] < rule.count - 1

    def _cancel(self, booking: Booking, slot: Slot, after: dt.datetime, *, latest: dt.datetime | None = None) -> bool:
        """The customer cancels some time after ``after``: mostly in good time, sometimes late."""
        policy = self.plans[booking.offering_id].offering.policy
        last = min(slot.start - dt.timedelta(minutes=2), latest or slot.start)
        deadline = min(slot.start - dt.timedelta(hours=policy.cancel_deadline_hours), last)
        start = after + dt.timedelta(minutes=5)
        if start >= last:
            return False
        if start < deadline and self.rng.random() < 0.7:
            moment = start + (deadline - start) * self.rng.random()
        else:
            late_from = max(start, deadline)
            moment = late_from + (last - late_from) * self.rng.random()
        reason = self.rng.choice(["临时有事", "行程变更", "身体不适", "工作加班", "天气原因", ""])
        engine.cancel(booking=booking, by=booking.user, reason=reason, now=moment)
        # The sandbox bank pays the refund back within minutes (what the outbox worker does live).
        for refund in Refund.objects.filter(booking=booking, state=RefundState.PENDING):
            paid_back = min(moment + dt.timedelta(minutes=self.rng.uniform(1, 20)), self.now)
            with contextlib.suppress(ProviderError):
                payments.send_refund(refund.pk, now=paid_back)
        return True

    def _review(self, plan: _Plan, booking: Booking) -> None:
        rating = self.rng.choices([5, 4, 3, 2, 1], [56, 30, 9, 4, 1])[0]
        if rating >= 4:
            text = self.rng.choice(plan.reviews) if plan.reviews and self.rng.random() < 0.85 else ""
        else:
            text = self.rng.choice(["等待时间有点长", "体验一般，还有改进空间", "和预期有些差距", "现场有点乱"])
        moment = booking.slot.end + dt.timedelta(hours=self.rng.uniform(0.3, 30))
        engine.add_review(booking=booking, user=booking.user, rating=rating, text=text, now=min(moment, self.now))

    # --- the days ahead -------------------------------------------------------------------------

    def _upcoming(self) -> None:
        zone = timeutil.local_zone()
        latest = self.now - dt.timedelta(minutes=1)
        horizon = self.now + dt.timedelta(days=UPCOMING_DAYS)
        # Activities open a month ahead: their next sessions already have sign-ups.
        slots = [
            s
            for s in self._slots(self.now, self.now + dt.timedelta(days=FUTURE_DAYS))
            if s.start < horizon or self.plans[s.offering_id].offering.kind == "activity"
        ]
        with transaction.atomic():
            for slot in slots:
                plan = self.plans[slot.offering_id]
                local = slot.start.astimezone(zone)
                days_ahead = (slot.start - self.now).total_seconds() / 86400
                share = max(0.15, 0.85 - 0.1 * days_ahead)
                self._book_slot(plan, slot, plan.demand(local, slot.is_holiday) * share, latest=latest)
            self._demo_user_bookings(slots, latest)
            self._full_class_with_waitlist(slots, latest)
            pending = [Status.PENDING_APPROVAL, Status.PENDING_PAYMENT, Status.CONFIRMED]
            for booking in (
                Booking.objects.filter(slot__in=slots, status__in=pending)
                .select_related("slot", "offering", "merchant", "user")
                .order_by("id")
            ):
                plan = self.plans[booking.offering_id]
                # Some approvals stay for the staff to handle in the demo.
                if booking.status == Status.PENDING_APPROVAL and self.rng.random() < 0.5:
                    continue
                slot = booking.slot
                moment = self._settle(booking, plan, booking.created_at, leave_open=True)
                if moment is not None and self.rng.random() < 0.04 and booking.user_id != self.customers[0].user.pk:
                    self._cancel(booking, slot, moment, latest=latest)

    def _arrivals_today(self) -> None:
        """Visitors of the sessions starting in the next hours are already at the gate, so the
        console's live view (checked in now against today's capacity) has something to show."""
        arriving = Booking.objects.filter(
            status=Status.CONFIRMED,
            slot__start__gt=self.now,
            slot__start__lte=self.now + dt.timedelta(hours=2),
        ).select_related("slot", "offering")
        for booking in arriving.order_by("id"):
            if self.rng.random() < 0.3:
                continue
            with contextlib.suppress(DomainError):  # check-in not open yet for this offering
                engine.check_in(voucher=engine.voucher_for(booking, now=self.now), staff=None, now=self.now)

    def _customer_service(self) -> None:
        """Two customers asked for a person in the chat, so the console's 客服 inbox has work."""
        from yuyue.assistant import services as assistant

        questions = [
            ("demo-scenic", "我想找人工客服，团队票的发票抬头填错了"),
            ("demo-course", "转人工！上周的课被扣了积分，我觉得不合理"),
        ]
        for (slug, question), customer in zip(questions, self.customers[1:], strict=False):
            merchant = Merchant.objects.get(slug=slug)
            assistant.ask(question=question, user=customer.user, merchant=merchant, now=self.now)

    def _demo_user_bookings(self, slots: list[Slot], latest: dt.datetime) -> None:
        """The demo end user has something of every kind coming up."""
        me = self.customers[0]
        by_kind: dict[str, list[Slot]] = defaultdict(list)
        for slot in slots:
            by_kind[self.plans[slot.offering_id].offering.kind].append(slot)
        for kind in KINDS:
            candidates = [s for s in by_kind[kind] if s.start > self.now + dt.timedelta(hours=20)]
            for slot in candidates[:: max(1, len(candidates) // 12)]:
                plan = self.plans[slot.offering_id]
                args = plan.who(me, slot.start.astimezone(timeutil.local_zone()).date())
                moment = self._booking_time(plan, slot, latest=latest)
                if args is None or moment is None:
                    continue
                try:
                    engine.book(user=me.user, slot_id=slot.pk, now=moment, **args)
                except DomainError:
                    continue
                break

    def _full_class_with_waitlist(self, slots: list[Slot], latest: dt.datetime) -> None:
        """One popular class in the next days is full, with people waiting for a place."""
        course = [s for s in slots if self.plans[s.offering_id].offering.kind == "course"]
        target = next((s for s in course if s.start > self.now + dt.timedelta(days=1)), None)
        if target is None:
            return
        plan = self.plans[target.offering_id]
        waiting = 0
        already = set(Booking.objects.filter(slot=target).values_list("user_id", flat=True))
        for customer in plan.pool:
            if customer.user.pk in already:
                continue
            moment = self._booking_time(plan, target, latest=latest)
            if moment is None or waiting >= 3:
                break
            try:
                engine.book(user=customer.user, slot_id=target.pk, now=moment)
            except DomainError as exc:
                if exc.code != "slot_full":
                    continue
                try:
                    engine.join_waitlist(user=customer.user, slot_id=target.pk, now=moment)
                    waiting += 1
                except DomainError:
                    continue

    # --- timestamps the engine cannot replay -----------------------------------------------------

    def _memberships(self) -> None:
        """The yoga studio sells a 10-class card (10次卡); the demo user holds one, bought a month ago,
        with classes used for past and upcoming classes, and has cancelled one class late (points)."""
        from yuyue.memberships.services import ProductSpec, grant_card, save_product

        merchant = Merchant.objects.get(slug=SLUGS["course"])
        owner = get_user_model().objects.get(username="demo-course-owner")
        product = save_product(
            merchant=merchant,
            spec=ProductSpec(name="10次卡", credits=10, valid_days=180, price_fen=88000),  # every class
        )
        save_product(merchant=merchant, spec=ProductSpec(name="20次卡", credits=20, valid_days=365, price_fen=158000))
        me = self.customers[0].user
        bought = self.now - dt.timedelta(days=30)
        card = grant_card(product=product, user=me, by=owner, at=bought)
        course = Slot.objects.filter(offering__merchant=merchant, status=SlotStatus.OPEN).order_by("start")
        mine = set(Booking.objects.filter(user=me).values_list("slot_id", flat=True))
        ended = course.filter(start__gt=bought, end__lt=self.now - dt.timedelta(hours=1))
        past = [s for s in ended if s.pk not in mine]
        used = 0
        for slot in reversed(past):  # the latest classes before today, with the card
            if used == 3:
                break
            try:
                booking = engine.book(
                    user=me, slot_id=slot.pk, pay_with="credit", card_id=card.pk, now=slot.start - dt.timedelta(days=1)
                )
            except DomainError:
                continue
            engine.check_in(voucher=engine.voucher_for(booking), staff=owner, now=slot.start)
            engine.complete_finished(now=slot.end + dt.timedelta(minutes=5))
            mine.add(slot.pk)
            used += 1
        for slot in past[-20:]:  # one class booked and cancelled too late: the late-cancel points
            if slot.pk in mine or slot.start < self.now - dt.timedelta(days=7):
                continue
            try:
                booking = engine.book(user=me, slot_id=slot.pk, now=slot.start - dt.timedelta(days=2))
            except DomainError:
                continue
            engine.cancel(booking=booking, by=me, reason="临时加班", now=slot.start - dt.timedelta(hours=2))
            break
        upcoming = course.filter(start__gt=self.now + dt.timedelta(days=1)).exclude(pk__in=mine)
        for slot in upcoming[:10]:
            with contextlib.suppress(DomainError):
                engine.book(user=me, slot_id=slot.pk, pay_with="credit", card_id=card.pk, now=self.now)
                break

    def _backdate(self) -> None:
        """Accounts existed before their first booking; merchants and staff before everything."""
        opened = timeutil.local_datetime(self.first_day - dt.timedelta(days=60), dt.time(9, 0))
        Merchant.objects.filter(slug__in=SLUGS.values()).update(created_at=opened)
        Offering.objects.filter(merchant__slug__in=SLUGS.values()).update(created_at=opened)
        get_user_model().objects.filter(username__startswith="demo-").update(date_joined=opened)
        cohorts: dict[int, list[int]] = defaultdict(list)  # sign-ups spread over 40 days
        for n, customer in enumerate(self.customers):
            cohorts[n % 40].append(customer.user.pk)
        for day, user_ids in cohorts.items():
            joined = opened + dt.timedelta(days=day, hours=self.rng.randint(0, 12), minutes=self.rng.randrange(60))
            EndUser.objects.filter(pk__in=user_ids).update(created_at=joined)
            Person.objects.filter(owner_id__in=user_ids).update(created_at=joined)
            PointsEntry.objects.filter(user_id__in=user_ids, booking__isnull=True).update(created_at=joined)


def _born_before(person: Person, year: int) -> bool:
    return person.birth_date is not None and person.birth_date.year < year


def _check_timetable(timetable: list[Any]) -> None:
    """No coach in two classes at once, and an hour to travel between branches."""
    busy: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    for branch, _code, weekdays, start, end, coach, _capacity in timetable:
        s, e = (dt.time.fromisoformat(t) for t in (start, end))
        for weekday in weekdays:
            busy[(coach.pk, weekday)].append((s.hour * 60 + s.minute, e.hour * 60 + e.minute, branch.pk))
    for periods in busy.values():
        periods.sort()
        for (_s1, e1, b1), (s2, _e2, b2) in itertools.pairwise(periods):
            gap = 60 if b1 != b2 else 0
            if s2 < e1 + gap:
                raise AssertionError("the demo timetable double-books a coach")
