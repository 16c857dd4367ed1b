"""Loading XSD files safely and compiling them with lxml (libxml2), once per contract.

Safety: schema files are parsed with no network access, no DTD loading and no entity
resolution; every ``xs:include`` / ``xs:import`` / ``xs:redefine`` location is checked, before
compiling, to name a file inside the allowed directories (the contract's own directory, and the
official schema bundle for B2MML), and a resolver refuses anything else while compiling.

Besides the compiled schema, ``XsdSchema`` keeps what the findings translation needs from the
schema text: the ``xs:documentation`` of each named simple type (shown as "expected") and the
fields of each identity constraint (a failed ``xs:key`` becomes "required field AUFNR").

Failure modes: ``ConfigurationError`` naming the file for a missing or unreadable file, a
location outside the allowed directories or a remote URL, and a schema libxml2 cannot compile
(with libxml2's messages and line numbers).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlsplit

from lxml import etree

from contracts.errors import ConfigurationError

__all__ = ["XSD_NS", "XsdSchema", "compile_xsd", "safe_parser", "schema_files"]

XSD_NS = "http://www.w3.org/2001/XMLSchema"
_LOCATION_ELEMENTS = ("include", "import", "redefine", "override")
_MAX_ERRORS_SHOWN = 5


def safe_parser() -> etree.XMLParser:
    """A parser that never touches the network, never loads a DTD, never expands entities."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class XsdSchema:
    """A compiled schema and the readable facts about it that findings need."""

    path: Path
    schema: etree.XMLSchema
    type_docs: dict[str, str] = field(default_factory=dict)
    key_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    element_types: dict[str, str] = field(default_factory=dict)

    def doc_of_element(self, name: str) -> str | None:
        """The documentation of the named type of the global element ``name``, if any."""
        type_name = self.element_types.get(name)
        return self.type_docs.get(type_name) if type_name else None


class _InsideOnly(etree.Resolver):
    """Resolves schema locations to local files inside the allowed directories; refuses the rest."""

    def __init__(self, allowed: Sequence[Path]) -> None:
        super().__init__()
        self.allowed = allowed
        self.refused: list[str] = []

    # lxml calls resolve(url, public_id, context); lxml-stubs omit the context argument.
    def resolve(  # type: ignore[override]
        self, system_url: str | None, public_id: str | None, context: object
    ) -> object:
        path = _local_path(system_url or "", Path.cwd())
        resolver: Any = self  # resolve_filename/resolve_string are missing from lxml-stubs
        if path is not None and _inside(path, self.allowed) and path.is_file():
            return resolver.resolve_filename(str(path), context)
        self.refused.append(system_url or "")
        return resolver.resolve_string("", context)


def _local_path(location: str, base_dir: Path) -> Path | None:
    parts = urlsplit(location)
    if parts.scheme == "file":
        return Path(unquote(parts.path)).resolve()
    if parts.scheme or parts.netloc:
        return None
    return (base_dir / unquote(location)).resolve()


def _inside(path: Path, allowed: Sequence[Path]) -> bool:
    return any(path.is_relative_to(root.resolve()) for root in allowed)


def _parse(path: Path) -> etree._ElementTree:
    try:
        return etree.parse(str(path), safe_parser())
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the schema file: {exc}") from exc
    except etree.XMLSyntaxError as exc:
        raise ConfigurationError(f"{path}: the schema file is not well-formed XML: {exc}") from exc


def schema_files(path: Path, allowed: Sequence[Path]) -> list[tuple[Path, etree._ElementTree]]:
    """The schema file and every file it includes or imports, each checked to be in ``allowed``."""
    path = path.resolve()
    if not _inside(path, allowed):
        raise ConfigurationError(f"{path}: the schema file is outside {_show(allowed)}")
    seen: dict[Path, etree._ElementTree] = {}
    pending = [path]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        if not current.is_file():
            raise ConfigurationError(f"{current}: schema file not found")
        tree = _parse(current)
        seen[current] = tree
        for element in tree.getroot():
            if not isinstance(element.tag, str):
                continue
            qname = etree.QName(element)
            if qname.namespace != XSD_NS or qname.localname not in _LOCATION_ELEMENTS:
                continue
            location = element.get("schemaLocation")
            if location is None:
                if qname.localname == "import":
                    continue  # an import without location adds nothing libxml2 would fetch
                raise ConfigurationError(
                    f"{current} line {element.sourceline}: "
                    f"xs:{qname.localname} has no schemaLocation"
                )
            target = _local_path(location, current.parent)
            if target is None or not _inside(target, allowed):
                raise ConfigurationError(
                    f"{current} line {element.sourceline}: xs:{qname.localname} schemaLocation "
                    f"{location!r} is not a file inside {_show(allowed)}; schemas are never "
                    "fetched from the network or from other directories"
                )
            pending.append(target)
    return list(seen.items())


def _show(allowed: Sequence[Path]) -> str:
    return " or ".join(str(root) for root in allowed)


def compile_xsd(path: Path, allowed: Sequence[Path]) -> XsdSchema:
    """Compile ``path`` (XSD 1.0) with libxml2 after checking every location it refers to."""
    files = schema_files(path, allowed)
    parser = safe_parser()
    resolver = _InsideOnly(allowed)
    parser.resolvers.add(resolver)
    try:
        document = etree.parse(str(path.resolve()), parser)
        schema = etree.XMLSchema(document)
    except etree.XMLSyntaxError as exc:
        raise ConfigurationError(f"{path}: the schema file is not well-formed XML: {exc}") from exc
    except etree.XMLSchemaParseError as exc:
        entries: list[Any] = list(cast(Iterable[Any], exc.error_log))
        messages = [f"line {e.line}: {e.message}" for e in entries][:_MAX_ERRORS_SHOWN]
        raise ConfigurationError(
            f"{path}: the schema does not compile (XSD 1.0, libxml2): " + "; ".join(messages)
            if messages
            else f"{path}: the schema does not compile: {exc}"
        ) from exc
    if resolver.refused:
        raise ConfigurationError(
            f"{path}: the schema refers to {', '.join(map(repr, resolver.refused))}, "
            f"which is not a file inside {_show(allowed)}"
        )
    result = XsdSchema(path=path, schema=schema)
    for _, tree in files:
        _collect_docs(tree, result)
    return result


def _collect_docs(tree: etree._ElementTree, result: XsdSchema) -> None:
    ns = {"xs": XSD_NS}
    type_docs, key_fields = result.type_docs, result.key_fields
    for element in tree.getroot().iterfind("xs:element", ns):
        name, type_name = element.get("name"), element.get("type")
        if name and type_name:
            result.element_types[name] = type_name.rpartition(":")[2]
    for simple in tree.getroot().iterfind("xs:simpleType", ns):
        name = simple.get("name")
        text = simple.findtext("xs:annotation/xs:documentation", default="", namespaces=ns)
        if name and text.strip():
            type_docs[name] = " ".join(text.split())
    for tag in ("key", "unique"):
        for constraint in tree.getroot().iterfind(f".//xs:{tag}", ns):
            name = constraint.get("name")
            if name:
                key_fields[name] = tuple(
                    f.get("xpath", "") for f in constraint.iterfind("xs:field", ns)
                )
