"""Every value of every bundled profile is verified by a tool, flagged unverified, or cites a source its profile lists.

A profile's ``sources`` is its tag legend: each entry reads ``"[TAG] citation"``. A leaf value (a scalar, a
list, an empty mapping or a ``{value: X, ...}`` wrapper) then either

(a) carries ``verified: "<tool> <version>"`` (itself, or a mapping around it),
(b) is ``unverified: true`` (itself, or a mapping around it),
(c) cites a tag in a comment: ``[TAG]``, ``[TAG, TAG2]``, ``[TAG-suffix]`` or ``[TAG detail]``, on a line the
    leaf spans, or in the comment lines directly above it or above a mapping that contains it (a comment
    on a mapping's key line covers its fields too), or
(d) is one of the metadata fields (``schema_version``, ``name``, ``family``, ``kind``, ``description``,
    ``sources``).

Every tag cited must be defined and every defined tag cited at least once. The YAML is read line by line
for comments and composed with PyYAML's safe loader for the structure (the nodes carry their lines).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
import yaml

from neuro_balance.hardware import list_profiles, load_profile
from neuro_balance.hardware.profile import PROFILE_DIR

METADATA = ("schema_version", "name", "family", "kind", "description", "sources")
WRAPPER_KEYS = {"value", "verified", "unverified", "note"}
_TAG = r"[A-Z][A-Z0-9]*(?:-[A-Za-z0-9]+)*"
SOURCE_FORM = re.compile(rf"^\[({_TAG})\] \S")          # "[TAG] citation"
CITATION = re.compile(rf"^({_TAG})(?:[\s:]|$)")          # one comma-separated part of "[TAG, TAG2 detail]"
BRACKETS = re.compile(r"\[([^\[\]]*)\]")
TOOL_VERSION = re.compile(r"^\S+ \d\S*$")                # "<tool> <version>"


@dataclass
class Leaf:
    """One value of a profile: its dotted name, the lines it spans and the key lines of its enclosing mappings."""

    path: str
    first: int
    last: int
    ancestors: list[int]
    verified: str | None = None
    unverified: bool = False


@dataclass
class Audit:
    """What a profile's text says about the provenance of each of its values."""

    defined: dict[str, int] = field(default_factory=dict)       # tag -> line of its sources entry
    bad_sources: list[str] = field(default_factory=list)        # entries not of the form "[TAG] citation"
    leaves: list[Leaf] = field(default_factory=list)
    metadata: list[str] = field(default_factory=list)
    cited_by_line: dict[int, set[str]] = field(default_factory=dict)   # comment tags outside the legend
    comment_only: set[int] = field(default_factory=set)

    def covering_lines(self, leaf: Leaf) -> set[int]:
        """The leaf's lines, the comment lines directly above it, and the same for each enclosing mapping's key."""
        lines = set(range(leaf.first, leaf.last + 1))
        for start in [leaf.first, *leaf.ancestors]:
            lines.add(start)
            above = start - 1
            while above in self.comment_only:
                lines.add(above)
                above -= 1
        return lines

    def tags_covering(self, leaf: Leaf) -> set[str]:
        """Tags cited in comments on the `covering_lines` of a leaf."""
        return set().union(*(self.cited_by_line.get(n, set()) for n in self.covering_lines(leaf)))

    def resolve(self, tag: str) -> str | None:
        """The defined tag a cited one names: itself, or the longest defined ``D`` with ``tag = D-suffix``."""
        if tag in self.defined:
            return tag
        stems = [d for d in self.defined if tag.startswith(d + "-")]
        return max(stems, key=len) if stems else None

    def category(self, leaf: Leaf) -> str:
        """'verified', 'unverified', 'cited' or 'missing'."""
        if leaf.verified:
            return "verified"
        if leaf.unverified:
            return "unverified"
        return "cited" if any(self.resolve(t) for t in self.tags_covering(leaf)) else "missing"

    def problems(self) -> list[str]:
        """Every breach of the rules above, one line each (empty when the profile complies)."""
        out = [f"sources entry {s!r} is not of the form \"[TAG] citation\"" for s in self.bad_sources]
        out += [f"{leaf.path} (line {leaf.first + 1}): verified {leaf.verified!r} is not '<tool> <version>'"
                for leaf in self.leaves if leaf.verified and not TOOL_VERSION.match(leaf.verified)]
        out += [f"{leaf.path} (line {leaf.first + 1}): no verified, no unverified, no [TAG] cited"
                for leaf in self.leaves if self.category(leaf) == "missing"]
        used = set()
        for line, tags in sorted(self.cited_by_line.items()):
            for tag in sorted(tags):
                name = self.resolve(tag)
                if name is None:
                    out.append(f"line {line + 1}: [{tag}] is not defined in sources")
                used.add(name)
        out += [f"sources tag [{tag}] is never cited" for tag in self.defined if tag not in used]
        return out

    def counts(self) -> dict[str, int]:
        """Leaves per category, metadata fields included."""
        counts = {"verified": 0, "cited": 0, "unverified": 0, "missing": 0, "metadata": len(self.metadata)}
        for leaf in self.leaves:
            counts[self.category(leaf)] += 1
        return counts


def comment_start(line: str) -> int | None:
    """Index of the ``#`` opening the line's comment, outside quotes; None when there is none."""
    quote = None
    i = 0
    while i < len(line):
        c = line[i]
        if quote == '"' and c == "\\":
            i += 2
            continue
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'" and (i == 0 or line[i - 1] in " \t[{,:"):
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return i
        i += 1
    return None


def _tags(comment: str) -> set[str]:
    found = set()
    for group in BRACKETS.findall(comment):
        for part in group.split(","):
            match = CITATION.match(part.strip())
            if match:
                found.add(match.group(1))
    return found


def _is_true(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":bool") and node.value.lower() == "true"


def _last_line(node: yaml.Node) -> int:
    end = node.end_mark
    return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line


def _block_scalar_lines(node: yaml.Node) -> set[int]:
    """Lines inside ``|`` and ``>`` scalars, where a ``#`` is text, not a comment."""
    if isinstance(node, yaml.ScalarNode):
        return set(range(node.start_mark.line, _last_line(node) + 1)) if node.style in ("|", ">") else set()
    children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
    return set().union(*(_block_scalar_lines(c) for c in children))


def _walk(node: yaml.MappingNode, path: str, ancestors: list[int], verified: str | None, unverified: bool,
          audit: Audit) -> None:
    for key_node, value in node.value:
        key = key_node.value
        if key in ("verified", "unverified", "note"):
            continue
        dotted = f"{path}.{key}" if path else key
        if not path and key in METADATA:
            audit.metadata.append(key)
            continue
        line = key_node.start_mark.line
        if isinstance(value, yaml.MappingNode) and value.value:
            keys = {k.value: v for k, v in value.value}
            tool = keys["verified"].value if isinstance(keys.get("verified"), yaml.ScalarNode) else None
            flagged = _is_true(keys["unverified"]) if "unverified" in keys else False
            if "value" in keys and set(keys) <= WRAPPER_KEYS:
                audit.leaves.append(Leaf(dotted, line, _last_line(value), ancestors, tool or verified,
                                         flagged or unverified))
                continue
            _walk(value, dotted, [*ancestors, line], tool or verified, flagged or unverified, audit)
        else:
            audit.leaves.append(Leaf(dotted, line, _last_line(value), ancestors, verified, unverified))


def audit_text(text: str) -> Audit:
    """Audit one profile's YAML text (see the module docstring for the rules)."""
    audit = Audit()
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    assert isinstance(root, yaml.MappingNode)
    legend: set[int] = set()
    for key_node, value in root.value:
        if key_node.value == "sources" and isinstance(value, yaml.SequenceNode):
            legend = set(range(key_node.start_mark.line, _last_line(value.value[-1] if value.value else value) + 1))
            for item in value.value:
                match = SOURCE_FORM.match(item.value) if isinstance(item, yaml.ScalarNode) else None
                if match and match.group(1) not in audit.defined:
                    audit.defined[match.group(1)] = item.start_mark.line
                else:
                    audit.bad_sources.append(getattr(item, "value", str(item)))
    _walk(root, "", [], None, False, audit)
    block_lines = _block_scalar_lines(root)
    for n, line in enumerate(text.splitlines()):
        if n in block_lines:
            continue
        start = comment_start(line)
        if start is None:
            continue
        if not line[:start].strip():
            audit.comment_only.add(n)
        tags = _tags(line[start:])
        if tags and n not in legend:
            audit.cited_by_line[n] = tags
    return audit


def audit_profile(name: str) -> Audit:
    """Audit a bundled profile by name."""
    return audit_text((PROFILE_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


def strip_citations(text: str, leaf: Leaf, audit: Audit) -> str:
    """``text`` with every comment that covers ``leaf`` emptied (comment-only lines keep a bare ``#``)."""
    lines = text.splitlines()
    for n in audit.covering_lines(leaf):
        start = comment_start(lines[n])
        if start is not None:
            lines[n] = lines[n][:start].rstrip() or lines[n][:start] + "#"
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("name", list_profiles())
def test_every_value_is_verified_unverified_or_cites_a_defined_source(name):
    audit = audit_profile(name)
    assert audit.defined, f"{name}: sources defines no [TAG]"
    assert audit.problems() == []
    assert audit.counts()["missing"] == 0 and set(audit.metadata) >= {"schema_version", "name", "kind", "sources"}


@pytest.mark.parametrize("name", list_profiles())
def test_the_audit_sees_what_the_loader_sees(name):
    """Same leaves flagged unverified and verified as `load_profile` reports: the line reading misses nothing."""
    audit = audit_profile(name)
    prof = load_profile(name, warn=False)
    flagged = {leaf.path for leaf in audit.leaves if leaf.unverified}
    assert all(any(p == u or p.startswith(u + ".") for u in prof.unverified) for p in flagged)
    assert all(any(p == u or p.startswith(u + ".") for p in flagged) for u in prof.unverified)
    tools = {leaf.path: leaf.verified for leaf in audit.leaves if leaf.verified}
    assert all(tools[p] == t for p, t in prof.verified.items() if p in tools)
    assert all(any(p == v or p.startswith(v + ".") for v in prof.verified) for p in tools)


@pytest.mark.parametrize("name", list_profiles())
def test_removing_the_comments_that_cite_a_value_fails_the_check(name, tmp_path):
    audit = audit_profile(name)
    cited = [leaf for leaf in audit.leaves if audit.category(leaf) == "cited"]
    assert cited, f"{name}: no cited value to remove"
    leaf = cited[len(cited) // 2]
    path = tmp_path / f"{name}.yaml"
    path.write_text(strip_citations((PROFILE_DIR / f"{name}.yaml").read_text(encoding="utf-8"), leaf, audit))
    load_profile(path, warn=False)                    # still a valid profile: only the citation is gone
    problems = audit_text(path.read_text()).problems()
    assert f"{leaf.path} (line {leaf.first + 1}): no verified, no unverified, no [TAG] cited" in problems


BASE = """\
schema_version: 1
name: chip
kind: digital
sources:
  - "[DOC] https://example.org/datasheet.pdf"
  - "[SIM] sim 1.0: src/neuron.cpp"
weights:
  format: int                  # [DOC]
  bits: 8                      # [DOC]
  signed: true                 # [DOC-table2, SIM]
  # the simulator rounds half to even [SIM: round()]
  rounding: nearest_even
state:
  # the membrane register [DOC p. 3]
  v: {bits: 16, signed: true,
      overflow: {value: saturate, verified: "sim 1.0"}}
"""


def test_a_compliant_profile_passes_and_counts_its_leaves():
    audit = audit_text(BASE)
    assert audit.problems() == []
    assert audit.counts() == {"verified": 1, "cited": 6, "unverified": 0, "missing": 0, "metadata": 4}
    assert audit.tags_covering(next(leaf for leaf in audit.leaves if leaf.path == "state.v.signed")) == {"DOC"}


@pytest.mark.parametrize("edit, problem", [
    (lambda t: t.replace("bits: 8                      # [DOC]", "bits: 8"),
     "weights.bits (line 9): no verified, no unverified, no [TAG] cited"),
    (lambda t: t.replace("  # the membrane register [DOC p. 3]\n", ""),
     "state.v.bits (line 14): no verified, no unverified, no [TAG] cited"),
    (lambda t: t.replace("  # the simulator rounds half to even [SIM: round()]\n", "\n"),
     "weights.rounding (line 12): no verified, no unverified, no [TAG] cited"),
    (lambda t: t.replace("[DOC-table2, SIM]", "[DOC-table2, EMU]"), "line 10: [EMU] is not defined in sources"),
    (lambda t: t.replace('"[DOC] https', '"DOC: https'),
     "sources entry 'DOC: https://example.org/datasheet.pdf' is not of the form \"[TAG] citation\""),
    (lambda t: t.replace('  - "[SIM] sim', '  - "[OLD] old.pdf"\n  - "[SIM] sim'), "sources tag [OLD] is never cited"),
    (lambda t: t.replace('verified: "sim 1.0"', 'verified: "sim"'),
     "state.v.overflow (line 16): verified 'sim' is not '<tool> <version>'"),
])
def test_each_breach_is_reported(edit, problem):
    text = edit(BASE)
    assert text != BASE
    assert problem in audit_text(text).problems()


def test_brackets_that_are_not_tags_and_hashes_in_strings_are_not_citations():
    text = BASE.replace("bits: 8                      # [DOC]",
                        'bits: 8                      # range [-128, 127], [vmin, vmax]') \
               .replace("  rounding: nearest_even\n", '  rounding: nearest_even\n  scale: {form: "2**x # [DOC]"}\n')
    audit = audit_text(text)
    assert "weights.bits (line 9): no verified, no unverified, no [TAG] cited" in audit.problems()
    assert "weights.scale.form (line 13): no verified, no unverified, no [TAG] cited" in audit.problems()


def test_a_comment_right_after_the_sources_list_cites_the_next_mapping():
    text = BASE.replace("weights:\n", "# every weight field [SIM]\nweights:\n")
    text = text.replace("  format: int                  # [DOC]", "  format: int")
    audit = audit_text(text)
    assert audit.problems() == []
    assert audit.tags_covering(next(leaf for leaf in audit.leaves if leaf.path == "weights.format")) == {"SIM"}


def test_a_flag_on_a_mapping_covers_its_fields():
    text = BASE + "conversion_defaults:\n  unverified: true\n  note: >-\n    a choice # [NOPE]\n  method: max\n"
    audit = audit_text(text)
    assert audit.problems() == []
    assert audit.counts()["unverified"] == 1
