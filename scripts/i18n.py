#!/usr/bin/env python3
"""Refresh the Simplified Chinese catalogue and compile it.

    python scripts/i18n.py

1. `makemessages` collects every marked string of the code and templates into django.po
   (existing translations are kept);
2. translations written in `locale/zh_Hans/LC_MESSAGES/parts/*.po` (plain msgid/msgstr pairs, so
   that people working on different parts of the app do not edit the same file) are merged in,
   and win over older ones;
3. strings no longer used are dropped and django.mo is compiled.

Needs GNU gettext (Debian: `apt install gettext`). Prints the strings still untranslated.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "src" / "yuyue"
LC = APP / "locale" / "zh_Hans" / "LC_MESSAGES"
PO = LC / "django.po"


def manage(*args: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "yuyue.settings", "YUYUE_HOME": os.environ.get("YUYUE_HOME", "/tmp")}
    subprocess.run([sys.executable, "-m", "django", *args], cwd=APP, env=env, check=True)


def makemessages() -> None:
    manage("makemessages", "-l", "zh_Hans", "--no-obsolete", "--no-location", "--ignore", "migrations/*")


def keep_plural_forms(po: Path) -> None:
    """msgcat keeps the header of the first part; without Plural-Forms gettext falls back to the
    English rule and plural strings (ngettext, blocktranslate count) stay in English."""
    head, sep, rest = po.read_text().partition("\n\n")
    if "Plural-Forms:" not in head:
        po.write_text(head + '\n"Plural-Forms: nplurals=1; plural=0;\\n"' + sep + rest)


def main() -> int:
    makemessages()
    parts = sorted((LC / "parts").glob("*.po"))
    if parts:
        merged = LC / "django.merged.po"
        subprocess.run(
            ["msgcat", "--use-first", "--no-location", "-o", str(merged), *map(str, parts), str(PO)], check=True
        )
        merged.replace(PO)
        keep_plural_forms(PO)
        makemessages()  # drops what the parts translate but the code no longer says
    # Only the catalogue: compilemessages would also compile the parts.
    subprocess.run(["msgfmt", "--check-format", "-o", str(LC / "django.mo"), str(PO)], check=True)
    missing = 0
    for flag, label in (("--untranslated", "untranslated"), ("--only-fuzzy", "fuzzy (a guess, not used)")):
        out = subprocess.run(["msgattrib", flag, "--no-obsolete", str(PO)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith('msgid "') and line != 'msgid ""':
                print(f"{label}: {line[7:-1]}")
                missing += 1
    print(f"{missing} strings need a translation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
