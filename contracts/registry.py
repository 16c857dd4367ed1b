"""The contract registry: finds every contract directory, identifies and validates messages.

Layout (the packaged ``contracts/schemas`` and any operator directory alike)::

    <base>/<family>/<type>/<version>/contract.toml   + the schema file it names

Adding a version is a new directory, never a code change. ``ContractRegistry.load`` reads all
manifests and refuses (``ConfigurationError``, naming files and keys) an unknown key, a manifest
whose family/type/version differs from its directory, a key registered twice, a schema location
outside the contract directory, and two contracts that could match one message with equal
specificity. ``check()`` also compiles every schema, so the service fails at start-up, not on
the first message; otherwise schemas compile on first use and stay cached.

Identification reads the message itself (IDoc control record, XML root, JSON fields) and never
guesses; no match is ``UnknownContract`` naming what was found and what is supported.
Validation failures are ``ContractViolation`` with one finding per problem; the caller adds the
message reference (``err.with_message_ref(describe_message(root))``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from lxml import etree

from contracts.contract import Contract, ContractKey
from contracts.errors import ConfigurationError, ContractViolation, Finding, UnknownContract
from contracts.identify import (
    IdocControl,
    IdocRule,
    JsonFieldsRule,
    RootRule,
    describe_message,
    is_idoc,
    read_idoc_envelope,
)
from contracts.manifest import MANIFEST_NAME, Manifest, read_manifest
from contracts.xmlpath import element_path, local_name, namespace_of, source_line

__all__ = [
    "Contract",
    "ContractKey",
    "ContractRegistry",
    "default_registry_dirs",
    "describe_message",
]

_PACKAGED = Path(__file__).resolve().parent / "schemas"


def default_registry_dirs() -> tuple[Path, ...]:
    """The contract directories shipped with mesbridge."""
    return (_PACKAGED,)


class ContractRegistry:
    """All known contracts, by key; identification and validation of messages against them."""

    def __init__(self, contracts: Iterable[Contract]) -> None:
        self._contracts: dict[ContractKey, Contract] = {}
        for contract in contracts:
            other = self._contracts.get(contract.key)
            if other is not None:
                raise ConfigurationError(
                    f"contract {contract.key} is defined twice: {other.manifest_path} and "
                    f"{contract.manifest_path}; give the new one another version"
                )
            self._contracts[contract.key] = contract
        self._ordered = sorted(self._contracts.values(), key=lambda c: c.key)
        _check_ambiguity(self._ordered)
        # Per-message lookups scan only the contracts that can match that kind of message.
        self._idoc = [c for c in self._ordered if isinstance(c.identify, IdocRule)]
        self._roots = [c for c in self._ordered if isinstance(c.identify, RootRule)]
        self._json = [c for c in self._ordered if isinstance(c.identify, JsonFieldsRule)]

    @classmethod
    def load(
        cls, extra_dirs: Sequence[Path] = (), *, official_b2mml_dir: Path | None = None
    ) -> ContractRegistry:
        """The packaged contracts plus those under ``extra_dirs`` (same layout)."""
        if official_b2mml_dir is not None and not official_b2mml_dir.is_dir():
            raise ConfigurationError(
                f"the official B2MML schema directory {official_b2mml_dir} does not exist"
            )
        contracts = []
        for base in (*default_registry_dirs(), *(Path(d).resolve() for d in extra_dirs)):
            for manifest in _manifests(base):
                official = _official_path(manifest, official_b2mml_dir)
                contracts.append(
                    Contract(
                        manifest,
                        official_schema_path=official,
                        official_bundle_dir=official_b2mml_dir if official else None,
                    )
                )
        return cls(contracts)

    def __iter__(self) -> Iterator[Contract]:
        return iter(self._ordered)

    def __len__(self) -> int:
        return len(self._contracts)

    def get(self, key: ContractKey | str) -> Contract:
        """The contract with ``key``; ``UnknownContract`` with the nearest key on a typo."""
        wanted = key if isinstance(key, ContractKey) else ContractKey.parse(key)
        contract = self._contracts.get(wanted)
        if contract is not None:
            return contract
        known = [str(k) for k in sorted(self._contracts)]
        hint = difflib.get_close_matches(str(wanted), known, n=1, cutoff=0.6)
        suggestion = f"; did you mean {hint[0]}?" if hint else ""
        raise UnknownContract(
            f"no contract {wanted}{suggestion} (known: {', '.join(known) or 'none'})"
        )

    def check(self) -> None:
        """Compile every schema now; one ``ConfigurationError`` listing every problem."""
        problems = []
        for contract in self:
            try:
                contract.compile()
            except ConfigurationError as exc:
                problems.append(f"{contract.key}: {exc.summary}")
        if problems:
            raise ConfigurationError(
                f"{len(problems)} contract(s) cannot be used:\n  " + "\n  ".join(problems)
            )

    # ------------------------------------------------------------------ identification

    def identify_xml(self, root: etree._Element) -> Contract:
        """The contract an XML message declares itself to be; ``UnknownContract`` otherwise."""
        if is_idoc(root):
            return self._identify_idoc(root)
        candidates = [
            c for c in self._roots if isinstance(c.identify, RootRule) and c.identify.matches(root)
        ]
        if candidates:
            return _most_specific(candidates)
        found = f"root element {_clark(root)}"
        release = root.get("releaseID")
        if release is not None:
            found += f" with releaseID {release!r}"
        # The same root in another namespace is usually another version of a known message
        # (B2MML V0401 for V0600): name the versions that are supported for that root first.
        versions = [
            f"{c.key} (namespace {c.identify.namespace or '(none)'})"
            for c in self._roots
            if isinstance(c.identify, RootRule) and local_name(root) in c.identify.root
        ]
        same_root = (
            f"{local_name(root)} is supported only as " + "; ".join(versions) + "; "
            if versions
            else ""
        )
        raise UnknownContract(
            f"no contract for {found}; {same_root}{self._supported(RootRule)}",
            findings=[
                Finding(
                    where=element_path(root),
                    line=source_line(root),
                    value=_clark(root),
                    expected=(
                        "one of the supported versions: " + "; ".join(versions)
                        if versions
                        else "a root element of a supported contract"
                    ),
                )
            ],
        )

    def _identify_idoc(self, root: etree._Element) -> Contract:
        envelope = read_idoc_envelope(root)
        chosen: Contract | None = None
        for control in envelope.controls:
            contract = self._match_idoc(control)
            if contract is None:
                raise UnknownContract(
                    f"no contract for IDOC {control.position} of <{envelope.root_name}> with "
                    f"{control.render()}; {self._supported(IdocRule)}",
                    findings=[
                        Finding(
                            where=control.path,
                            line=control.line,
                            value=control.render(),
                            expected="the IDoc type of a supported contract (listed above)",
                        )
                    ],
                )
            if chosen is not None and contract is not chosen:
                raise UnknownContract(
                    f"the IDOC elements of <{envelope.root_name}> match different contracts: "
                    f"{chosen.key} and {contract.key} (IDOC {control.position}); "
                    "one file carries one IDoc type",
                    findings=[
                        Finding(
                            where=control.path,
                            line=control.line,
                            value=control.render(),
                            expected=f"a control record that, like IDOC 1, matches {chosen.key}",
                        )
                    ],
                )
            chosen = contract
        assert chosen is not None  # is_idoc() saw at least one IDOC
        return chosen

    def _match_idoc(self, control: IdocControl) -> Contract | None:
        candidates = [
            c
            for c in self._idoc
            if isinstance(c.identify, IdocRule) and c.identify.matches(control)
        ]
        return _most_specific(candidates) if candidates else None

    def identify_json(self, data: object) -> Contract:
        """The contract a JSON message matches by its fields; ``UnknownContract`` otherwise."""
        candidates = [
            c
            for c in self._json
            if isinstance(c.identify, JsonFieldsRule) and c.identify.matches(data)
        ]
        if candidates:
            return _most_specific(candidates)
        if not isinstance(data, dict):
            found = f"a JSON {type(data).__name__}, not an object"
        else:
            names = sorted(
                {
                    name
                    for c in self
                    if isinstance(c.identify, JsonFieldsRule)
                    for name, _ in c.identify.fields
                }
            )
            shown = [f"{name} = {data[name]!r}" for name in names if name in data]
            found = "a JSON object with " + (", ".join(shown) if shown else "none of the fields")
            if names:
                found += f" ({', '.join(names)})"
            found += " that identify a contract"
        raise UnknownContract(f"no contract for {found}; {self._supported(JsonFieldsRule)}")

    def _supported(self, kind: type[IdocRule] | type[RootRule] | type[JsonFieldsRule]) -> str:
        entries = [
            f"{c.key} ({c.identify.describe()})"
            for c in self
            if isinstance(c.identify, kind) and c.identify.specificity > 0
        ]
        label = kind.kind
        if not entries:
            return f"no {label} contract is identified automatically"
        return f"supported {label} contracts: " + "; ".join(entries)

    # ------------------------------------------------------------------ validation

    def validate_xml(self, root: etree._Element, contract: Contract | None = None) -> Contract:
        """Identify (unless given) and validate; ``ContractViolation`` with findings if invalid."""
        chosen = contract if contract is not None else self.identify_xml(root)
        findings = chosen.validate_xml(root)
        if findings:
            raise _violation(chosen, findings)
        return chosen

    def validate_json(self, data: object, contract: Contract | None = None) -> Contract:
        """Identify (unless given) and validate; ``ContractViolation`` with findings if invalid."""
        chosen = contract if contract is not None else self.identify_json(data)
        findings = chosen.validate_json(data)
        if findings:
            raise _violation(chosen, findings)
        return chosen


def _violation(contract: Contract, findings: list[Finding]) -> ContractViolation:
    count = len(findings)
    problems = "1 problem" if count == 1 else f"{count} problems"
    return ContractViolation(
        f"does not satisfy {contract.key} ({problems})",
        findings=findings,
        contract=str(contract.key),
    )


def _clark(root: etree._Element) -> str:
    namespace = namespace_of(root)
    return (
        f"{{{namespace}}}{local_name(root)}" if namespace else f"{local_name(root)} (no namespace)"
    )


def _most_specific(candidates: list[Contract]) -> Contract:
    # The load-time ambiguity check guarantees a single best candidate.
    return max(candidates, key=lambda c: c.identify.specificity if c.identify else -1)


def _check_ambiguity(contracts: list[Contract]) -> None:
    for index, first in enumerate(contracts):
        for second in contracts[index + 1 :]:
            a, b = first.identify, second.identify
            if a is None or b is None or not a.overlaps(b):
                continue
            if a.specificity == b.specificity:
                raise ConfigurationError(
                    f"contracts {first.key} ({first.manifest_path}) and {second.key} "
                    f"({second.manifest_path}) would both match the same message with equal "
                    f"specificity ({a.describe()} / {b.describe()}); make one of them more "
                    "specific in its [identify] table (e.g. cimtyp, sndprn or release_id)"
                )


def _manifests(base: Path) -> list[Manifest]:
    if not base.is_dir():
        raise ConfigurationError(f"contract directory {base} does not exist")
    found = []
    for path in sorted(base.rglob(MANIFEST_NAME)):
        relative = path.relative_to(base).parts
        if len(relative) != 4:
            raise ConfigurationError(
                f"{path}: a contract manifest must be at <dir>/<family>/<type>/<version>/"
                f"{MANIFEST_NAME} under {base}"
            )
        manifest = read_manifest(path)
        declared = (manifest.family, manifest.type, manifest.version)
        if declared != relative[:3]:
            raise ConfigurationError(
                f"{path}: the manifest declares {'/'.join(declared)} but lives in "
                f"{'/'.join(relative[:3])}; the directory must name the contract"
            )
        if not (manifest.directory / manifest.schema).is_file():
            raise ConfigurationError(
                f"{path}: key schema names {manifest.schema!r}, which is not a file in "
                f"{manifest.directory}"
            )
        found.append(manifest)
    return found


def _official_path(manifest: Manifest, bundle: Path | None) -> Path | None:
    """Where the manifest's official schema is in the bundle: a relative path or a unique name."""
    if bundle is None or not manifest.official_schema:
        return None
    direct = (bundle / manifest.official_schema).resolve()
    if direct.is_file() and direct.is_relative_to(bundle.resolve()):
        return direct
    name = Path(manifest.official_schema).name
    matches = sorted(p for p in (bundle / name, *bundle.glob(f"*/{name}")) if p.is_file())
    if len(matches) == 1:
        return matches[0].resolve()
    if not matches:
        raise ConfigurationError(
            f"{manifest.path}: official_schema {manifest.official_schema!r} is not in the "
            f"official schema directory {bundle} (nor one level below it)"
        )
    raise ConfigurationError(
        f"{manifest.path}: official_schema {manifest.official_schema!r} is ambiguous in {bundle}: "
        + ", ".join(str(m) for m in matches)
    )
