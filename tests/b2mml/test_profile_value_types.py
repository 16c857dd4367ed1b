"""The profiles' simple types accept exactly the values their comments promise.

The patterns are written in deterministic forms for libxml2's speed; these cases pin
down the value spaces of the plain forms they replace (``\\S(.*\\S)?`` on
normalizedString, ``[\\s\\S]*\\S[\\s\\S]*`` on string, ``.+T…(Z|±hh:mm)`` on dateTime),
checked in a typical schedule, in both profiles.
"""

from __future__ import annotations

import pytest
from lxml import etree

from tests.b2mml.b2mml_factory import CREATED_AT, typical_order
from transforms.b2mml_schedule import B2mmlVersion, to_pasx_schedule
from transforms.mapping import MappingProfile

IDENTIFIERS = [
    ("1000815", True),
    ("ORDER 1000815", True),
    ("A  B", True),  # inner runs of blanks are the sender's business
    ("A\tB", True),  # normalizedString: a tab is a blank once the value is read
    (" 1000815", False),
    ("1000815 ", False),
    ("\t1000815", False),
    ("", False),
    (" ", False),
]
TEXTS = [
    ("Mix", True),
    ("  Mix  ", True),
    ("\nMix\n", True),
    ("", False),
    ("   ", False),
    ("\t\n ", False),
]
DATE_TIMES = [
    ("2026-05-09T07:35:25+02:00", True),
    ("2026-05-09T07:35:25.125Z", True),
    ("2026-05-09T07:35:25-05:30", True),
    (" 2026-05-09T07:35:25Z ", True),  # dateTime collapses blanks before the pattern
    ("2026-05-09T07:35:25", False),  # no offset: ambiguous plant time
    ("2026-05-09T07:35+02:00", False),
    ("2026-05-09", False),
]


def _schedule(profile: MappingProfile, version: B2mmlVersion) -> etree._Element:
    return to_pasx_schedule(typical_order(), profile, created_at=CREATED_AT, version=version)


def _first(document: etree._Element, name: str) -> etree._Element:
    found = document.find(f".//{{{etree.QName(document).namespace}}}{name}")
    assert found is not None, name
    return found


@pytest.mark.parametrize("version", ["V0600", "V7"])
@pytest.mark.parametrize(
    ("element", "cases"),
    [("BODID", IDENTIFIERS), ("Description", TEXTS), ("CreationDateTime", DATE_TIMES)],
)
def test_profile_type_accepts_exactly_the_promised_values(
    version: B2mmlVersion,
    element: str,
    cases: list[tuple[str, bool]],
    profile: MappingProfile,
    profile_schemas: dict[str, etree.XMLSchema],
) -> None:
    document = _schedule(profile, version)
    schema = profile_schemas[version]
    assert schema.validate(document), str(schema.error_log)
    verdicts = {}
    for value, _expected in cases:
        _first(document, element).text = value
        verdicts[value] = schema.validate(document)
    assert verdicts == dict(cases)
