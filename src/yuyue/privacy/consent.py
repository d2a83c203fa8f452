"""The consent texts users agree to, versioned: a changed text gets a new version, old ones stay.

A ``Consent`` row names the version, so what someone agreed to can be shown word for word later.
The texts are legal statements in Chinese (the language they are given in); they are not
translated through gettext, because a translation would not be the text that was agreed to.
"""

from __future__ import annotations

from yuyue.privacy.models import ConsentKind

TEXTS: dict[str, dict[str, str]] = {
    ConsentKind.ID_NUMBER: {
        "id_number-2026-12": (
            "我单独同意本平台及所预约的商家处理该出行人的居民身份证号码（敏感个人信息），"
            "仅用于实名预约、入场核验及法律法规要求的登记。证件号加密保存，工作人员查看完整号码会被记录；"
            "预约结束后按保存期限匿名化。我可以随时删除该证件号以撤回同意，撤回不影响撤回前的处理。"
        ),
    },
    ConsentKind.MINOR: {
        "minor-2026-12": (
            "我是该未满十四周岁儿童的父母或其他监护人，我单独同意本平台及所预约的商家处理该儿童的个人信息"
            "（姓名、出生日期及证件号码），仅用于预约、入场核验和监护人陪同规则。"
            "我可以随时删除该儿童以撤回同意，撤回不影响撤回前的处理。"
        ),
    },
}

# The version a new consent is recorded with: the last text of each kind.
CURRENT: dict[str, str] = {kind: list(versions)[-1] for kind, versions in TEXTS.items()}


def text(kind: str, version: str | None = None) -> str:
    """The exact text of a version ("" for a version this release does not know)."""
    return TEXTS.get(kind, {}).get(version or CURRENT.get(kind, ""), "")


def current_texts() -> list[dict[str, str]]:
    """What a form shows beside the checkbox, in a fixed order."""
    return [{"kind": str(kind), "version": CURRENT[kind], "text": text(kind)} for kind in TEXTS]
