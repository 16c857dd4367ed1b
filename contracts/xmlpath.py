"""Readable element paths for findings, and the way back from a libxml2 error path to the element.

libxml2 reports ``/*/*[2]`` for elements in a default namespace and prefixed steps otherwise;
an ERP analyst needs ``/ProcessProductionSchedule/DataArea[1]/...`` style paths with local
names. ``element_path`` builds those (positions only where a name repeats among siblings, as
libxml2 does for unqualified elements), ``find_by_libxml2_path`` resolves an error path to the
element it names. Neither raises: an unresolvable path gives ``None``.
"""

from __future__ import annotations

from lxml import etree

__all__ = ["element_path", "find_by_libxml2_path", "local_name", "namespace_of", "source_line"]


def source_line(element: etree._Element) -> int | None:
    """The element's line in its source document (``None`` if built in memory)."""
    line = getattr(element, "sourceline", None)  # typed as unknown in lxml-stubs
    return line if isinstance(line, int) else None


def local_name(element: etree._Element) -> str:
    return etree.QName(element).localname


def namespace_of(element: etree._Element) -> str:
    return etree.QName(element).namespace or ""


def element_path(element: etree._Element) -> str:
    """``/LOIPRO01/IDOC/E1AFKOL/E1AFFLL/E1AFVOL[2]/E1RESBL/CHARG``: local names, positions."""
    steps: list[str] = []
    node: etree._Element | None = element
    while node is not None:
        parent = node.getparent()
        name = local_name(node)
        if parent is None:
            steps.append(name)
        else:
            same = [sibling for sibling in parent if sibling.tag == node.tag]
            steps.append(f"{name}[{same.index(node) + 1}]" if len(same) > 1 else name)
        node = parent
    return "/" + "/".join(reversed(steps))


def find_by_libxml2_path(target: etree._Element, path: str) -> etree._Element | None:
    """The element a libxml2 error path names, where ``target`` was the validation root."""
    if not path.startswith("/"):
        return None
    # The first step names the validation root itself (lxml validates a subtree as a document).
    rest = path[1:].partition("/")[2]
    if not rest:
        return target
    namespaces = {prefix: uri for prefix, uri in target.nsmap.items() if prefix}
    try:
        found = target.xpath("./" + rest, namespaces=namespaces)
    except etree.XPathError:
        return None
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return found[0]
    return None
