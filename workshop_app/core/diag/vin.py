"""Vehicle identification numbers: is the VIN a car reports a VIN at all?

ISO 3779 fixes the form everywhere: 17 characters, digits and capital letters except I, O
and Q (too easily read as 1 and 0). Position 9 is a check digit only where the law asks
for it: North America (49 CFR 565, manufacturer codes starting 1 to 5) and China (GB 16735,
codes starting with L). European and most other VINs use position 9 freely, so a check
digit that does not match is a warning only for those two regions; elsewhere it is no news.

What we warn about, then: a wrong length, a character a VIN never contains, and (North
America, China) a wrong check digit. A car that reports such a VIN has a damaged or badly
programmed ECU, or the scan read the wrong identifier: worth a line in the scan, never a
reason to refuse it.

>>> vin_problems("1M8GDM9AXKP042788")
()
>>> vin_problems("WSA0DEMO5T0000421")
('contains O, which no VIN may contain (ISO 3779: no I, O or Q)',)
"""

from __future__ import annotations

__all__ = ["check_digit", "vin_problems"]

VIN_LENGTH = 17
_FORBIDDEN = "IOQ"
_ALLOWED = frozenset("0123456789ABCDEFGHJKLMNPRSTUVWXYZ")
# 49 CFR 565.15: the value of each letter (I, O, Q have none) and the weight of each position.
_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
# Regions whose law makes position 9 a check digit: North America (1-5) and China (L).
_CHECKED_REGIONS = frozenset("12345L")


def check_digit(vin: str) -> str:
    """The check digit (``0``-``9`` or ``X``) the 49 CFR 565 rule gives for a 17-character VIN.

    Raises ValueError if the VIN has another length or a character without a value.
    """
    if len(vin) != VIN_LENGTH:
        raise ValueError(f"a VIN has {VIN_LENGTH} characters, not {len(vin)}")
    try:
        total = sum(_VALUES[c] * w for c, w in zip(vin.upper(), _WEIGHTS, strict=True))
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]!r} has no value in a VIN") from None
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def vin_problems(vin: str) -> tuple[str, ...]:
    """What is wrong with ``vin`` (empty if nothing); each problem is one short sentence.

    Leading and trailing blanks (ECUs pad the field) are not problems; lower case is read as
    upper case. An empty VIN is "not read", not invalid: it gives no problems either.
    """
    text = vin.strip().upper()
    if not text:
        return ()
    problems: list[str] = []
    if len(text) != VIN_LENGTH:
        problems.append(f"has {len(text)} characters; a VIN has {VIN_LENGTH}")
    forbidden = sorted({c for c in text if c in _FORBIDDEN})
    if forbidden:
        problems.append(f"contains {', '.join(forbidden)}, which no VIN may contain (ISO 3779: no I, O or Q)")
    other = sorted({c for c in text if c not in _ALLOWED and c not in _FORBIDDEN})
    if other:
        shown = ", ".join(repr(c) for c in other[:5])
        problems.append(f"contains {shown}: a VIN has only digits and capital letters")
    if not problems and text[0] in _CHECKED_REGIONS:
        expected = check_digit(text)
        if text[8] != expected:
            problems.append(
                f"check digit (position 9) is {text[8]}, the 49 CFR 565 rule gives {expected}; "
                "it is mandatory for North American and Chinese VINs"
            )
    return tuple(problems)
