"""Hostile XML: nothing is read, nothing connects, nothing expands, nothing leaks into errors.

The corpus files point at file:///etc/passwd and 127.0.0.1:9; here they are pointed at a
secret of the test's own (a regular file, and a FIFO that notices being opened) and at a
listening socket. Each check runs twice: with the guard as shipped, and with its first
layer (the byte-level prolog scan) switched off, to prove the second layer (parser
configuration, a resolver that refuses every load, the parsed-tree checks) holds alone.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import tomllib
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from contracts.errors import (
    HostileInput,
    MalformedInput,
    OversizedMessage,
    UnusableInput,
)
from integration import intake
from integration.intake import IntakeLimits, XmlMessage, read_json, read_message, read_xml

REFUSED = Path(__file__).resolve().parent.parent / "fixtures" / "hostile" / "refused"
ACCEPTED = REFUSED.parent / "accepted"
CORPUS_FILE_URL = "file:///etc/passwd"
CORPUS_HOST_PORT = "127.0.0.1:9"
MIB = 1024 * 1024

# Corpus files that try to read file:///etc/passwd, and the class each must raise.
READS_A_FILE = {
    "xxe-file-passwd.xml": HostileInput,
    "external-dtd-file.xml": HostileInput,
    "parameter-entities.xml": HostileInput,
    "doctype-after-comment-and-pi.xml": HostileInput,
    "xinclude.xml": HostileInput,
}
# Corpus files that reach for 127.0.0.1:9: refused, or accepted because they are inert.
REACHES_THE_NETWORK = {
    "refused/xxe-http.xml": HostileInput,
    "refused/external-dtd-http.xml": HostileInput,
    "refused/parameter-entities.xml": HostileInput,
    "accepted/processing-instruction.xml": None,
    "accepted/xsi-schema-location.xml": None,
}
LAYERS = ["as-shipped", "prolog-scan-off"]


@pytest.fixture(params=LAYERS)
def layer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "prolog-scan-off":
        monkeypatch.setattr(intake, "_refuse_declarations", lambda *_args: None)
    return str(request.param)


def _corpus(name: str) -> str:
    return (REFUSED / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(READS_A_FILE))
def test_file_xxe_never_leaks_the_secret(
    name: str,
    layer: str,
    secret_file: Any,
    exception_texts: Callable[[BaseException], list[str]],
) -> None:
    assert CORPUS_FILE_URL in _corpus(name)
    uri, marker = secret_file.uri, secret_file.marker
    data = _corpus(name).replace(CORPUS_FILE_URL, uri).encode()
    with pytest.raises(UnusableInput) as caught:
        read_message(data, source=name)
    assert type(caught.value) is READS_A_FILE[name], str(caught.value)
    texts = exception_texts(caught.value)
    assert texts, "the probe must see the exception's text"
    assert not [text for text in texts if marker in text]


@pytest.mark.parametrize("name", sorted(READS_A_FILE))
def test_file_xxe_does_not_even_open_the_file(name: str, layer: str, secret_fifo: Any) -> None:
    data = _corpus(name).replace(CORPUS_FILE_URL, secret_fifo.uri).encode()
    with pytest.raises(HostileInput):
        read_message(data, source=name)
    assert not secret_fifo.was_opened()


def test_the_fifo_probe_notices_a_reader(secret_fifo: Any) -> None:
    """Control: the probe above can fail. Opening the pipe is noticed."""
    path = secret_fifo.path
    assert path.read_text(encoding="utf-8") == secret_fifo.marker
    assert secret_fifo.was_opened(grace_seconds=5)


@pytest.mark.parametrize("name", sorted(REACHES_THE_NETWORK))
def test_no_connection_is_attempted(name: str, layer: str, listener: Any) -> None:
    text = (REFUSED.parent / name).read_text(encoding="utf-8")
    assert CORPUS_HOST_PORT in text
    data = text.replace(CORPUS_HOST_PORT, listener.host_port).encode()
    expected = REACHES_THE_NETWORK[name]
    if expected is None:
        assert isinstance(read_message(data, source=name), XmlMessage)
    else:
        with pytest.raises(expected):
            read_message(data, source=name)
    assert listener.connections() == 0


def test_the_socket_probe_notices_a_connection(listener: Any) -> None:
    """Control: the probe above can fail."""
    host, port = listener.host_port.split(":")
    with socket.create_connection((host, int(port)), timeout=2):
        pass
    deadline = time.monotonic() + 2
    count = 0
    while count == 0 and time.monotonic() < deadline:
        count = listener.connections()
    assert count == 1


@pytest.mark.parametrize("name", ["billion-laughs.xml", "quadratic-blowup.xml"])
def test_entity_bombs_are_refused_before_parsing(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_parsing(*_args: object) -> etree._Element:
        raise AssertionError("the parser must not see an entity bomb")

    monkeypatch.setattr(intake, "_parse_xml", no_parsing)
    data = (REFUSED / name).read_bytes()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(HostileInput, match="DOCTYPE refused"):
            read_message(data, source=name)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.25
    # The refusal allocates a small constant, never anything the size of an expansion.
    assert peak < 256 * 1024, peak


@pytest.mark.parametrize("name", ["billion-laughs.xml", "quadratic-blowup.xml"])
def test_entity_bombs_without_the_prolog_scan_are_still_refused_fast(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake, "_refuse_declarations", lambda *_args: None)
    started = time.perf_counter()
    with pytest.raises(HostileInput):
        read_message((REFUSED / name).read_bytes(), source=name)
    assert time.perf_counter() - started < 1.0


def test_xinclude_is_not_processed_by_the_parser(secret_file: Any) -> None:
    """Even below the XInclude check, parsing alone never pulls the included file in."""
    data = _corpus("xinclude.xml").replace(CORPUS_FILE_URL, secret_file.uri).encode()
    root = intake._parse_xml(data, "xinclude.xml", 128)
    serialised = etree.tostring(root, encoding="unicode")
    assert secret_file.marker not in serialised
    assert root.find(".//{http://www.w3.org/2001/XInclude}include") is not None
    with pytest.raises(HostileInput, match="XInclude"):
        read_xml(data, source="xinclude.xml")


def test_an_internal_entity_that_reaches_the_parser_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(intake, "_refuse_declarations", lambda *_args: None)
    data = b'<!DOCTYPE r [<!ENTITY x "harmless">]>\n<r>&x;</r>'
    with pytest.raises(HostileInput, match="DOCTYPE refused: the parsed document"):
        read_xml(data, source="internal-entity")


# --- size ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", [read_message, read_xml, read_json])
def test_one_byte_over_the_cap_is_oversized_before_anything_is_decoded(
    reader: Callable[..., object],
) -> None:
    cap = IntakeLimits().max_bytes
    assert cap == 10 * MIB
    # Invalid UTF-8 and not XML or JSON at all: only the size may be reported.
    data = b"\xff" * (cap + 1)
    with pytest.raises(OversizedMessage) as caught:
        reader(data, source="big")
    assert "10,485,761 bytes" in str(caught.value)
    assert "the cap is 10,485,760 bytes" in str(caught.value)
    assert "MESBRIDGE_MAX_MESSAGE_BYTES" in str(caught.value)


def test_exactly_the_cap_is_not_oversized() -> None:
    limits = IntakeLimits(max_bytes=64)
    data = b"<r>" + b"x" * (64 - 7) + b"</r>"
    assert len(data) == 64
    assert isinstance(read_message(data, source="edge", limits=limits), XmlMessage)
    with pytest.raises(OversizedMessage):
        read_message(data + b"\n", source="edge", limits=limits)


def test_a_20_mb_text_node_is_oversized_under_the_default_cap() -> None:
    data = b"<LOIPRO01><LTXA1>" + b"a" * (20 * MIB) + b"</LTXA1></LOIPRO01>"
    with pytest.raises(OversizedMessage, match="the cap is 10,485,760 bytes"):
        read_xml(data, source="big-text")


# Runs in a fresh interpreter: ru_maxrss is a high-water mark for the whole process.
_BIG_VALUE_PROBE = """
import json, resource, sys
from contracts.errors import MesbridgeError
from integration.intake import IntakeLimits, read_xml
MIB = 1024 * 1024
bodies = {
    "text": lambda n: b"<r><t>" + b"a" * n + b"</t></r>",
    "attribute": lambda n: b'<r><t a="' + b"a" * n + b'"/></r>',
    "cdata": lambda n: b"<r><t><![CDATA[" + b"a" * n + b"]]></t></r>",
    "comment": lambda n: b"<r><!--" + b"a" * n + b"--></r>",
}
results = {}
for kind, build in bodies.items():
    data = build(20 * MIB)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        read_xml(data, source=kind, limits=IntakeLimits(max_bytes=64 * MIB))
        outcome = ["accepted", ""]
    except MesbridgeError as exc:
        outcome = [type(exc).__name__, exc.summary]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results[kind] = outcome + [(after - before) / 1024]
    del data
print(json.dumps(results))
"""


def test_a_20_mb_value_under_a_raised_cap_is_refused_without_blowing_memory() -> None:
    """libxml2 refuses any single value over 10,000,000 bytes while huge_tree is off."""
    completed = subprocess.run(
        [sys.executable, "-c", _BIG_VALUE_PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout)
    assert set(results) == {"text", "attribute", "cdata", "comment"}
    for kind, (error, summary, grown_mib) in results.items():
        assert error == "OversizedMessage", (kind, error, summary)
        assert "longer than the parser's 10,000,000-byte limit" in summary
        assert "\n" not in summary
        # The 20 MiB input is allocated before measuring; parsing may add at most one
        # 10 MB buffer, never a multiple of the input.
        assert grown_mib < 48, (kind, grown_mib)


def test_depth_over_the_parser_limit_names_the_configured_limit() -> None:
    data = b"<a>" * 300 + b"</a>" * 300
    with pytest.raises(MalformedInput, match="nested deeper than 128 levels"):
        read_xml(data, source="deep")


def test_json_bombs_are_refused_before_json_sees_them(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parsing(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("json.loads must not see a too-deep document")

    monkeypatch.setattr(intake.json, "loads", no_parsing)
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(MalformedInput, match="JSON nested deeper than 128 levels"):
        read_json(deep, source="deep.json")


def _hostile_corpus() -> list[str]:
    with (REFUSED.parent / "expected.toml").open("rb") as handle:
        expected = tomllib.load(handle)
    return sorted(name for name, entry in expected.items() if entry["error"] == "HostileInput")


@pytest.mark.parametrize("name", _hostile_corpus())
def test_every_hostile_file_is_refused_by_the_second_layer_alone(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake, "_refuse_declarations", lambda *_args: None)
    with pytest.raises(HostileInput):
        read_message((REFUSED / name).read_bytes(), source=name)
