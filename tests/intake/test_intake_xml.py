"""read_xml / read_message on XML: what passes, what it carries, and how refusals read."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from lxml import etree

from contracts.errors import ConfigurationError, HostileInput, MalformedInput, OversizedMessage
from integration.intake import IntakeLimits, XmlMessage, read_message, read_xml, require_lxml
from integration.settings import Settings

ACCEPTED = Path(__file__).resolve().parent.parent / "fixtures" / "hostile" / "accepted"
IDOC = b"""<?xml version="1.0" encoding="UTF-8"?>
<LOIPRO01>
  <IDOC BEGIN="1">
    <E1AFKOL SEGMENT="1">
      <AUFNR>000000600001</AUFNR>
      <LTXA1>Weigh excipients</LTXA1>
    </E1AFKOL>
  </IDOC>
</LOIPRO01>
"""


def test_returns_the_root_with_source_lines() -> None:
    root = read_xml(IDOC, source="idoc")
    assert root.tag == "LOIPRO01"
    assert root.findtext(".//AUFNR") == "000000600001"
    aufnr = root.find(".//AUFNR")
    assert aufnr is not None
    assert aufnr.sourceline == 5


def test_read_message_carries_root_bytes_digest_and_source() -> None:
    message = read_message(IDOC, source="sap.LOIPRO/0000000000815001")
    assert isinstance(message, XmlMessage)
    assert message.root.tag == "LOIPRO01"
    assert message.raw is IDOC
    assert message.sha256 == hashlib.sha256(IDOC).hexdigest()
    assert message.source == "sap.LOIPRO/0000000000815001"
    assert "raw=" not in repr(message)  # the bytes stay out of logs


def test_utf8_bom_is_accepted_and_lines_are_unchanged() -> None:
    root = read_xml(b"\xef\xbb\xbf" + IDOC, source="bom")
    aufnr = root.find(".//AUFNR")
    assert aufnr is not None
    assert aufnr.sourceline == 5


def test_non_ascii_utf8_text_is_kept() -> None:
    data = "<r><LTXA1>Wiegen der Hilfsstoffe für Charge µ 5 °C</LTXA1></r>".encode()
    assert read_xml(data, source="umlaut").findtext("LTXA1") == (
        "Wiegen der Hilfsstoffe für Charge µ 5 °C"
    )


@pytest.mark.parametrize(
    "declaration",
    [
        b"<?xml version='1.0' encoding='utf-8'?>",
        b'<?xml version="1.0" encoding="US-ASCII"?>',
        b'<?xml version="1.0"?>',
        b'<?xml version="1.0" standalone="yes"?>',
    ],
)
def test_accepted_declarations(declaration: bytes) -> None:
    assert read_xml(declaration + b"\n<r/>", source="decl").tag == "r"


@pytest.mark.parametrize("encoding", [b"UTF-16", b"Shift_JIS", b"IBM037", b"x-unknown"])
def test_other_declared_encodings_are_refused(encoding: bytes) -> None:
    data = b'<?xml version="1.0" encoding="' + encoding + b'"?>\n<r>plain ascii</r>'
    with pytest.raises(MalformedInput) as caught:
        read_xml(data, source="enc")
    assert f"names encoding {encoding.decode()!r}" in str(caught.value)
    assert "UTF-8, US-ASCII, ISO-8859-1" in str(caught.value)


@pytest.mark.parametrize(
    ("encoding", "codec"),
    [
        ("ISO-8859-1", "latin-1"),
        ("latin1", "latin-1"),
        ("iso-8859-15", "iso8859-15"),
        ("windows-1252", "cp1252"),
    ],
)
def test_single_byte_encodings_of_non_unicode_sap_systems_are_read(
    encoding: str, codec: str
) -> None:
    text = f'<?xml version="1.0" encoding="{encoding}"?>\n<r>\n  <t>Mischen Größe 1 – é</t></r>'
    if codec != "cp1252":
        text = text.replace("–", "-")  # the en dash is in windows-1252 only
    root = read_xml(text.encode(codec), source="enc")
    element = root.find("t")
    assert element is not None
    assert element.text == text.split("<t>")[1].split("</t>")[0]
    assert element.sourceline == 3  # transcoding keeps every line number


def test_single_byte_encoding_with_an_undefined_byte_is_refused() -> None:
    data = b'<?xml version="1.0" encoding="windows-1252"?>\n<r>\x81</r>'
    with pytest.raises(MalformedInput, match="does not define") as caught:
        read_xml(data, source="enc")
    assert caught.value.findings[0].value == "0x81"
    assert caught.value.findings[0].line == 2


def test_transcoded_messages_are_still_guarded() -> None:
    data = (
        b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        b'<!DOCTYPE r [<!ENTITY x "\xe9">]>\n<r>&x;</r>'
    )
    with pytest.raises(HostileInput):
        read_xml(data, source="enc")


def test_us_ascii_declared_with_non_ascii_bytes_is_refused() -> None:
    data = b'<?xml version="1.0" encoding="US-ASCII"?>\n<r>\n  W\xc3\xa4gen</r>'
    with pytest.raises(MalformedInput, match="non-ASCII bytes") as caught:
        read_xml(data, source="ascii")
    finding = caught.value.findings[0]
    assert finding.line == 3
    assert finding.value == "0xC3"
    assert "column 4" in finding.where


def test_invalid_utf8_names_the_byte_line_and_column() -> None:
    data = b"<r>\n  <MAKTX>Tablette \xe9</MAKTX>\n</r>"
    with pytest.raises(MalformedInput, match="not valid UTF-8") as caught:
        read_xml(data, source="latin1")
    finding = caught.value.findings[0]
    assert finding.line == 2
    assert finding.value == "0xE9"
    assert "column 19" in finding.where
    assert "byte 22" in finding.where


def test_not_well_formed_names_the_parser_problem_line_and_column() -> None:
    data = b"<LOIPRO01>\n  <E1AFKOL>\n  </E1AFKOX>\n</LOIPRO01>"
    with pytest.raises(MalformedInput) as caught:
        read_xml(data, source="mismatch")
    text = str(caught.value)
    assert text.startswith("mismatch: not well-formed XML: Opening and ending tag mismatch")
    assert "E1AFKOL" in text
    assert ", line 3, column" not in caught.value.summary  # libxml2's suffix is reformatted
    assert caught.value.findings[0].line == 3


@pytest.mark.parametrize(
    ("data", "error", "phrase"),
    [
        (b"<!doctype r><r/>", HostileInput, "DOCTYPE refused"),
        (b"\xef\xbb\xbf<!DOCTYPE r><r/>", HostileInput, "DOCTYPE refused"),
        (b"<!DOCTYPE r><r/>", HostileInput, "DOCTYPE refused"),
        (b"<!ENTITY x 'y'><r/>", HostileInput, "DOCTYPE refused"),
        (b"<!-- c --><!ELEMENT r ANY><r/>", HostileInput, "DOCTYPE refused"),
        (b"<r>&amp;&nbsp;</r>", HostileInput, "Entity 'nbsp' not defined"),
        (b'<r a="&x;"/>', HostileInput, "entity refused"),
        (b"<r>Smith & Co</r>", MalformedInput, "must be written as &amp;"),
        (b"<r><LTXA1>AT&T</LTXA1></r>", MalformedInput, "must be written as &amp;"),
        (b'<r a="R&D"/>', MalformedInput, "must be written as &amp;"),
        (b"  <?xml version='1.0'?><r/>", MalformedInput, "not well-formed XML"),
        (b"<r>\x00</r>", MalformedInput, "NUL byte"),
        (b"<r>&#xD800;</r>", MalformedInput, "not well-formed XML"),
        (b"<r>\x01</r>", MalformedInput, "not well-formed XML"),
        (b"<!-- <!DOCTYPE r> unterminated", MalformedInput, "not well-formed XML"),
        (b"<r/><!DOCTYPE r>", MalformedInput, "not well-formed XML"),
        (b"hello", MalformedInput, "does not start with '<'"),
    ],
)
def test_refusals(data: bytes, error: type[Exception], phrase: str) -> None:
    with pytest.raises(error) as caught:
        read_xml(data, source="case")
    assert type(caught.value) is error
    assert phrase in str(caught.value)


def test_a_prolog_full_of_comments_is_scanned_in_linear_time() -> None:
    data = b"<!---->" * 200_000 + b"<?pi x?>" * 100_000 + b"<!DOCTYPE r><r/>"
    started = time.perf_counter()
    with pytest.raises(HostileInput):
        read_xml(data, source="long-prolog")
    assert time.perf_counter() - started < 1.0


def test_comments_pis_cdata_and_references_are_kept_as_data() -> None:
    pi = read_xml((ACCEPTED / "processing-instruction.xml").read_bytes(), source="pi")
    previous = pi.getprevious()
    assert isinstance(previous, etree._ProcessingInstruction)
    assert previous.target == "xml-stylesheet"

    cdata = read_xml((ACCEPTED / "doctype-text-in-cdata.xml").read_bytes(), source="cdata")
    assert cdata.findtext(".//LTXA1") == ("<!DOCTYPE x [<!ENTITY y SYSTEM 'file:///etc/passwd'>]>")

    refs = read_xml((ACCEPTED / "predefined-entities-and-char-refs.xml").read_bytes(), source="r")
    assert refs.findtext(".//LTXA1") == "Weigh <API> & excipients \u2013 1\u2009kg"

    hint = read_xml((ACCEPTED / "xsi-schema-location.xml").read_bytes(), source="xsi")
    location = hint.get("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation")
    assert location is not None
    assert location.endswith("B2MML-V0600-ProductionPerformance.xsd")


def test_depth_limit_is_exact_and_names_the_line() -> None:
    limits = IntakeLimits(max_depth=5)
    five = b"<a>\n" * 5 + b"</a>" * 5
    assert read_xml(five, source="five", limits=limits).tag == "a"
    six = b"<a>\n" * 6 + b"</a>" * 6
    with pytest.raises(MalformedInput, match="nested deeper than 5 levels") as caught:
        read_xml(six, source="six", limits=limits)
    assert caught.value.findings[0].line == 6


def test_default_depth_boundary() -> None:
    assert read_xml(b"<a>" * 128 + b"</a>" * 128, source="128").tag == "a"
    with pytest.raises(MalformedInput, match="nested deeper than 128 levels"):
        read_xml(b"<a>" * 129 + b"</a>" * 129, source="129")


def test_source_lines_stay_exact_for_field_elements_beyond_65535_lines() -> None:
    fields = [f"  <F n='{line}'>v</F>" for line in range(2, 70_002)]
    data = "\n".join(["<r>", *fields, "</r>"]).encode()
    root = read_xml(data, source="long", limits=IntakeLimits(max_bytes=8 * 1024 * 1024))
    wrong = [
        (int(f.get("n", "0")), f.sourceline) for f in root if int(f.get("n", "0")) != f.sourceline
    ]
    assert wrong == []


def test_parsing_from_many_threads_at_once() -> None:
    def parse(index: int) -> str | None:
        return read_xml(IDOC, source=f"t{index}").findtext(".//AUFNR")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(parse, range(400)))
    assert results == ["000000600001"] * 400


# --- limits and start-up checks --------------------------------------------------------------


def test_limits_from_settings() -> None:
    limits = IntakeLimits.from_settings(Settings(max_message_bytes=2048))
    assert limits == IntakeLimits(max_bytes=2048, max_depth=128)
    with pytest.raises(OversizedMessage, match="the cap is 2,048 bytes"):
        read_message(b"<r>" + b"x" * 2048 + b"</r>", source="s", limits=limits)


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [
        ({"max_bytes": 0}, "at least 1 byte"),
        ({"max_depth": 0}, "between 1 and 255"),
        ({"max_depth": 256}, "between 1 and 255"),
    ],
)
def test_impossible_limits_stop_start_up(changes: dict[str, int], phrase: str) -> None:
    with pytest.raises(ConfigurationError, match=phrase):
        IntakeLimits(**changes)


def test_require_lxml() -> None:
    require_lxml()
    require_lxml((6, 1))
    installed = ".".join(str(part) for part in etree.LXML_VERSION)
    with pytest.raises(ConfigurationError) as caught:
        require_lxml((99, 0))
    assert f"lxml {installed} is installed; mesbridge needs lxml >= 99.0" in str(caught.value)
    assert "CVE-2026-41066" in str(caught.value)
