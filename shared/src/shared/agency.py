"""The agency's own settings that more than one service reads (issue 9, "Agency settings"): the business
calendar preset for Kazakhstan and the checks of the agency's requisites (CL-12 documents). Pure
functions, stdlib only. Checks answer with stable message codes (`shared.messages`), never prose.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from shared import messages as M

__all__ = ["check_bik", "check_bin", "check_iban", "kz_holidays"]

# ---------------------------------------------------------------------------- Kazakhstan public holidays
#
# Source: Law of the Republic of Kazakhstan of 13 December 2001 No. 267-II «О праздниках в Республике
# Казахстан» (as amended in 2022: 25 October Republic Day is a national holiday again, 17 December is no
# longer a day off), and the Labour Code of the RK, art. 85 §2: when a day off coincides with a holiday
# the day off moves to the next working day — except for the religious holidays (7 January Orthodox
# Christmas, the first day of Kurban ait). The government's yearly decree may move more days (bridges);
# the lead adds those by hand. Kurban ait's date is announced each year by the Spiritual Administration of
# Muslims of Kazakhstan: the preset carries the expected date, which the lead may correct.
KZ_FIXED: tuple[tuple[int, int, bool], ...] = (   # (month, day, religious)
    (1, 1, False), (1, 2, False),        # Новый год
    (1, 7, True),                        # Православное Рождество
    (3, 8, False),                       # Международный женский день
    (3, 21, False), (3, 22, False), (3, 23, False),  # Наурыз мейрамы
    (5, 1, False),                       # Праздник единства народа Казахстана
    (5, 7, False),                       # День защитника Отечества
    (5, 9, False),                       # День Победы
    (7, 6, False),                       # День Столицы
    (8, 30, False),                      # День Конституции
    (10, 25, False),                     # День Республики
    (12, 16, False),                     # День Независимости
)
KURBAN_AIT: dict[int, date] = {          # first day of Kurban ait (Eid al-Adha), expected
    2025: date(2025, 6, 6), 2026: date(2026, 5, 27), 2027: date(2027, 5, 16), 2028: date(2028, 5, 5),
}


def kz_holidays(year: int) -> list[date]:
    """The official non-working holidays of Kazakhstan in ``year`` with the weekend carry-over (art. 85)."""
    days: set[date] = set()
    carry: list[date] = []
    for month, day, religious in KZ_FIXED:
        d = date(year, month, day)
        days.add(d)
        if d.weekday() >= 5 and not religious:
            carry.append(d)
    if year in KURBAN_AIT:
        days.add(KURBAN_AIT[year])
    for d in carry:  # the next working day that is not itself a holiday or a carried day off
        nxt = d + timedelta(days=1)
        while nxt.weekday() >= 5 or nxt in days:
            nxt += timedelta(days=1)
        days.add(nxt)
    return sorted(days)


# ---------------------------------------------------------------------------- requisites

_DIGITS12 = re.compile(r"^\d{12}$")
_IBAN_KZ = re.compile(r"^KZ\d{2}[0-9A-Z]{16}$")
_BIK = re.compile(r"^[A-Z]{4}KZ[0-9A-Z]{2}$")


def check_bin(value: str) -> str | None:
    """A BIN/IIN: 12 digits with the control digit of the Kazakh algorithm (weights 1..11, then 3..11,1,2,
    modulo 11; a remainder of 10 twice means the number cannot exist). Returns a message code or None."""
    if not _DIGITS12.match(value):
        return M.BIN_LENGTH
    digits = [int(c) for c in value]
    check = sum(d * w for d, w in zip(digits[:11], range(1, 12), strict=True)) % 11
    if check == 10:
        check = sum(d * w for d, w in zip(digits[:11], [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2], strict=True)) % 11
    if check == 10 or check != digits[11]:
        return M.BIN_CHECKSUM
    return None


def normalize_iban(value: str) -> str:
    return re.sub(r"\s+", "", value).upper()


def check_iban(value: str) -> str | None:
    """A Kazakh IBAN: KZ, 2 check digits, 3-digit bank code, 13 account characters (20 in all), ISO 13616
    mod-97 = 1. Spaces are allowed when typed."""
    iban = normalize_iban(value)
    if not _IBAN_KZ.match(iban):
        return M.IBAN_FORMAT
    rearranged = iban[4:] + iban[:4]
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return None if number % 97 == 1 else M.IBAN_CHECKSUM


def check_bik(value: str) -> str | None:
    """A Kazakh bank's BIK (its SWIFT code): 8 characters, country KZ in positions 5-6 (e.g. CASPKZKA)."""
    return None if _BIK.match(value.strip().upper()) else M.BIK_FORMAT
