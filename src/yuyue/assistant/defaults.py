"""The platform's default FAQ answers (merchant empty): one per intent in Chinese and English, and
answers per kind where the kinds differ. A data migration stores them; merchants then edit or
override them in the console. ``{merchant}`` and ``{phone}`` are filled in when answering."""

from __future__ import annotations

from typing import NamedTuple


class DefaultAnswer(NamedTuple):
    kind: str  # "" for every kind
    intent: str
    language: str
    question: str
    answer: str


_ZH = {
    "how_to_book": (
        "怎么预约？",
        "在首页选择类别或搜索项目，进入项目页选日期和时段，点「预约」，选择出行人/就诊人并填写信息后提交即可。"
        "需要付款的预约请在规定时间内完成支付。",
    ),
    "reschedule": (
        "怎么改预约时间？",
        "打开「我的预约」中的这条预约，点「改时间」，选同一项目的其他时段即可，预约号不变。"
        "改期次数和截止时间以项目规则为准。",
    ),
    "cancel": (
        "怎么取消预约？",
        "打开「我的预约」中的这条预约，点「取消」，页面会先显示能退多少钱、是否扣积分，确认后取消。",
    ),
    "cancel_policy": (
        "取消有什么规则？",
        "在项目规定的截止时间前取消免费；截止后取消可能扣积分或只退部分费用，具体以预约页面「取消预览」为准。"
        "预约开始后不能再取消。",
    ),
    "notification_missing": (
        "没收到通知怎么办？",
        "预约成功、改期、取消和开始前提醒都会发到「消息」页，并按您的设置发短信或微信。"
        "请检查「消息」页和通知设置；登录后我可以帮您查看最近一条通知的发送情况并重新发送。",
    ),
    "my_bookings": (
        "在哪里看我的预约？",
        "登录后在「我的预约」里可以看到即将开始和历史预约，以及候补中的记录。",
    ),
    "voucher": (
        "入场凭证在哪里？",
        "预约确认后，在「我的预约」打开这条预约即可看到入场二维码，到场出示给工作人员扫码核销即可，截图也可以使用。",
    ),
    "payment_issue": (
        "付款遇到问题怎么办？",
        "如果付款后仍显示待支付，请稍等一两分钟再刷新；超时未付的预约会自动释放名额。"
        "退款会原路退回，一般 1–7 个工作日到账。仍有问题请联系人工客服。",
    ),
    "waitlist": (
        "约满了能候补吗？",
        "时段约满时可以点「候补」，有人取消后系统会按候补顺序自动为您预约并通知您。"
        "在「我的预约」可以看到候补中的记录，也可以随时退出候补。",
    ),
    "id_and_guardian": (
        "需要实名吗？孩子怎么约？",
        "需要实名的项目请先在「常用联系人」添加身份证信息；未成年人需要由监护人在同一账号下预约并陪同。",
    ),
    "group_booking": (
        "团体怎么预约？",
        "一次预约可以选择多位联系人或填写人数，上限以项目规则为准；人数较多的团体请联系{merchant}（{phone}）提前安排。",
    ),
    "opening_info": (
        "营业时间和地址？",
        "各项目的地址和可预约时段都在项目页，节假日安排以可预约的时段为准。如需咨询请致电{merchant}：{phone}。",
    ),
    "points": (
        "积分怎么算？",
        "积分在「我的账户」中查看；截止时间后取消或爽约可能扣除积分，具体以项目规则为准。",
    ),
    "invoice": (
        "怎么开发票？",
        "在线支付的订单可以联系{merchant}开具发票，请提供抬头和税号；到店付款的请在现场向工作人员索取。",
    ),
    "human_agent": (
        "怎么联系人工客服？",
        "已为您转接人工客服，工作人员会尽快在这里回复您。也可以致电{merchant}：{phone}。",
    ),
    "other": (
        "你能做什么？",
        "您好，我是预约小助手，可以帮您：查看我的预约、改时间、取消、查询通知和积分、找入场凭证，"
        "也可以解答预约规则。需要人工时说「转人工」即可。",
    ),
}

_EN = {
    "how_to_book": (
        "How do I book?",
        "Choose a kind or search on the home page, open the offering, pick a day and a time, press Book, "
        "choose the people and fill in the form. Paid bookings must be paid within the time shown.",
    ),
    "reschedule": (
        "How do I change the time?",
        "Open the booking in My bookings and press Change the time; pick another time of the same offering. "
        "The booking code stays the same; the offering's rules limit how often and until when.",
    ),
    "cancel": (
        "How do I cancel?",
        "Open the booking in My bookings and press Cancel: you see the refund and any points first, then confirm.",
    ),
    "cancel_policy": (
        "What are the cancellation rules?",
        "Cancelling before the offering's deadline is free; later it may cost points or part of the price, "
        "as the cancel preview on the booking shows. A booking cannot be cancelled once it has started.",
    ),
    "notification_missing": (
        "I did not get a notification",
        "Confirmations, changes and reminders go to Messages and, as you chose, by text or WeChat. "
        "Sign in and I can check the delivery of your last notification and send it again.",
    ),
    "my_bookings": (
        "Where are my bookings?",
        "Sign in and open My bookings: upcoming and past bookings and your waitlist places.",
    ),
    "voucher": (
        "Where is my voucher?",
        "Once the booking is confirmed, open it in My bookings to see the QR code; show it at the entrance. "
        "A screenshot works too.",
    ),
    "payment_issue": (
        "I have a payment problem",
        "If a paid booking still shows awaiting payment, wait a minute and refresh; unpaid holds are released "
        "after the time shown. Refunds go back to where you paid, usually within 1–7 working days.",
    ),
    "waitlist": (
        "Is there a waitlist?",
        "When a time is full, press Waitlist: when someone cancels, you are booked automatically in order "
        "and told so. My bookings shows your places; you can leave at any time.",
    ),
    "id_and_guardian": (
        "Do I need an ID? What about children?",
        "For offerings that need real names, add the person's ID in My people first. "
        "Children are booked by a guardian in the same account and come with them.",
    ),
    "group_booking": (
        "How do groups book?",
        "One booking can include several people up to the offering's limit; for larger groups contact "
        "{merchant} ({phone}) in advance.",
    ),
    "opening_info": (
        "Opening hours and address",
        "Each offering's page shows its address and the times you can book; holidays follow those times. "
        "Questions: {merchant}, {phone}.",
    ),
    "points": (
        "How do points work?",
        "Your points are shown in your account; a late cancellation or a no-show may cost points, "
        "as the offering's rules say.",
    ),
    "invoice": (
        "How do I get an invoice?",
        "For online payments, ask {merchant} for an invoice with your company name and tax number; "
        "for payment at the venue, ask the staff there.",
    ),
    "human_agent": (
        "How do I reach a person?",
        "I have passed your question to our staff; they will reply here as soon as they can. "
        "You can also call {merchant}: {phone}.",
    ),
    "other": (
        "What can you do?",
        "I can show your bookings, change the time, cancel, check notifications and points, find your voucher "
        "and explain the booking rules. Say 'human' to reach our staff.",
    ),
}

# Where the kinds differ, the kind's own answer comes before the general one.
_ZH_BY_KIND = {
    ("clinic", "id_and_guardian"): (
        "挂号需要实名吗？",
        "挂号须实名，请先在「常用联系人」添加就诊人的身份证；儿童就诊请由监护人在同一账号下添加孩子并陪同就诊。"
        "同一就诊人同一科室每天限挂一个号。",
    ),
    ("clinic", "cancel_policy"): (
        "退号有什么规则？",
        "就诊前规定时间内可免费退号；多次预约未到诊可能被暂停预约资格，请按时就诊或提前退号。",
    ),
    ("scenic", "opening_info"): (
        "景区开放时间？",
        "景区按预约时段分时入园，节假日可能限流，请以项目页可预约的时段为准。咨询电话：{phone}。",
    ),
    ("scenic", "group_booking"): (
        "团队怎么预约入园？",
        "团队游客可在一次预约中添加多位游客（实名），超过上限的团队请提前联系景区：{phone}。",
    ),
    ("exhibition", "voucher"): (
        "怎么入馆？",
        "按预约时段到馆，在入口出示「我的预约」中的二维码并核验身份证即可入馆。",
    ),
    ("course", "points"): (
        "课时和积分怎么算？",
        "上课按预约扣除，截止时间后取消或缺课会按规则扣积分；在「我的账户」可查看积分余额。",
    ),
    ("course", "cancel_policy"): (
        "约课后取消有什么规则？",
        "开课前规定时间之前取消免费，之后取消或缺课会扣积分，具体见预约页的取消预览。",
    ),
    ("vehicle", "opening_info"): (
        "在哪里上车？",
        "上车点和目的地在预约时填写，司机会在出发前联系您；调度电话：{phone}。",
    ),
    ("activity", "group_booking"): (
        "可以多人一起报名吗？",
        "活动一般一人一次报名，每位参加者请用自己的手机号报名；团体参加请联系主办方：{phone}。",
    ),
}


def default_answers() -> list[DefaultAnswer]:
    rows = [DefaultAnswer("", intent, "zh", q, a) for intent, (q, a) in _ZH.items()]
    rows += [DefaultAnswer("", intent, "en", q, a) for intent, (q, a) in _EN.items()]
    rows += [DefaultAnswer(kind, intent, "zh", q, a) for (kind, intent), (q, a) in _ZH_BY_KIND.items()]
    return rows
