"""Reading a stack file's YAML the way the Pulumi CLI does, at a bounded cost.

The Pulumi CLI reads stack files with Go's yaml.v3, and PyYAML's defaults differ from it where it
matters here, so `drctl plan` could pass a file that `pulumi up` refuses or read a value another way:

- a key given twice in one mapping is an error for the CLI; PyYAML silently keeps the last value;
- YAML 1.2's core schema: only true/false (any case style) are booleans, so `yes`, `on`, `no` and
  `off` are strings; there are no timestamps and no base-60 numbers (PyYAML reads `1:30` as 90).
  Tags beyond the core ones (`!!binary`, `!!set`, `!!timestamp`, custom tags) are refused: no
  config value can be one.

Anchors and aliases are expanded, as the CLI does, but under a budget. A parser's node graph shares
an aliased node, so a few hundred bytes of nested aliases (the "billion laughs") parse cheaply, and
then cost gigabytes once the config is turned into the strings the program receives: a 423-byte
file cost 148 MB before this check. A stack file has a few hundred values; MAX_VALUES is far above
any real one and far below any harm.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1_000_000
MAX_VALUES = 10_000  # scalars, lists and mappings (keys included), every alias expanded
MAX_DEPTH = 32  # lists and mappings inside one another

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}


class StackYamlError(ValueError):
    """Why a text is not a usable stack file; `line` is 1-based, None when no line is to blame."""

    def __init__(self, line: int | None, where: str, problem: str, got: str, allowed: str):
        self.line, self.where, self.problem, self.got, self.allowed = line, where, problem, got, allowed
        super().__init__(f"{where}: {problem} (got {got}; allowed: {allowed})")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema scalars."""

    yaml_implicit_resolvers: dict = {}

    def __init__(self, text: str):
        super().__init__(text)
        # Where each alias was written, by (containing node, index or key node): an aliased node
        # keeps the line of its anchor, and a refusal should name the line of the alias.
        self.alias_lines: dict[tuple[int, Any], int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if index is not None and self.check_event(yaml.AliasEvent):  # None: a mapping's key
            self.alias_lines[(id(parent), _index_key(index))] = self.peek_event().start_mark.line + 1
        return super().compose_node(parent, index)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = self.construct_scalar(node).replace("_", "")
        sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
        if digits.startswith(("0x", "0o")):
            return sign * int(digits[2:], 16 if digits[1] == "x" else 8)
        return sign * int(digits, 10)


def _core_resolvers() -> None:
    kept = ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")
    _Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag in kept]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _Loader.add_implicit_resolver(
        _CORE + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    _Loader.add_implicit_resolver(
        _CORE + "int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
    _Loader.add_implicit_resolver(
        _CORE + "float",
        re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                   r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
        list("-+0123456789."))
    _Loader.add_constructor(_CORE + "int", _Loader.construct_yaml_int)


_core_resolvers()


def parse(text: str) -> Any:
    """The YAML document in `text` as Python values; StackYamlError when the Pulumi CLI would refuse
    it or it would cost more than the budget to expand."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise StackYamlError(None, "(file)", "too large for a stack file", f"{len(text)} characters",
                             f"at most {MAX_BYTES} bytes")
    loader = None
    try:
        loader = _Loader(text)  # reads the text at once: a control character fails here
        node = loader.get_single_node()
        if node is None:
            return None
        _Budget(loader.alias_lines).check(node, "(top level)", 0, node.start_mark.line + 1)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        if err.context_mark and mark.index >= len(text.rstrip()):
            mark = err.context_mark  # "unexpected end of stream": where the unclosed thing began helps more
        problem = err.problem or str(err)
        if err.context:
            problem = f"{err.context}, {problem}"
        raise StackYamlError(mark.line + 1 if mark else None, "(YAML syntax)", f"not valid YAML: {problem}",
                             _snippet(text, mark.line) if mark else "the file",
                             "a YAML mapping such as 'config:' with indented 'namespace:key: value' lines") from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        raise StackYamlError(line, "(text)", "a control character YAML does not allow",
                             f"character U+{err.character:04X}" if isinstance(err.character, int)
                             else repr(err.character), "printable text, tabs and line breaks") from None
    except RecursionError:
        raise StackYamlError(None, "(top level)", f"nested more than {MAX_DEPTH} levels deep",
                             "lists or mappings nested too deeply to read",
                             f"at most {MAX_DEPTH} levels of lists and mappings") from None
    finally:
        if loader is not None:
            loader.dispose()


def _snippet(text: str, line: int) -> str:
    lines = text.splitlines()
    shown = lines[line].strip() if 0 <= line < len(lines) else ""
    return repr(shown[:60]) if shown else "the end of the file"


class _Budget:
    """One walk over the node graph, every alias followed: counts the values the document expands
    to, and refuses duplicate keys, recursive aliases, deep nesting and non-core tags. Sizes are
    remembered per node, so an aliased node is walked once however often it is referenced."""

    def __init__(self, alias_lines: dict[tuple[int, Any], int]) -> None:
        self.alias_lines = alias_lines
        self.sizes: dict[int, int] = {}
        self.walking: set[int] = set()
        self.total = 0

    def line_of(self, parent: Node, index: Any, child: Node) -> int:
        return self.alias_lines.get((id(parent), _index_key(index)), child.start_mark.line + 1)

    def check(self, node: Node, where: str, depth: int, line: int) -> int:
        if id(node) in self.walking:
            raise StackYamlError(line, where, "an alias refers to the value that contains it",
                                 "a recursive alias", "aliases to complete, earlier values only")
        if id(node) in self.sizes:
            return self._add(self.sizes[id(node)], line, where)
        if node.tag not in _ALLOWED_TAGS:
            raise StackYamlError(line, where, f"the YAML tag {_short_tag(node.tag)} is not supported",
                                 repr(_short_tag(node.tag)),
                                 "plain strings, numbers, true/false, null, lists and mappings")
        if depth > MAX_DEPTH:
            raise StackYamlError(line, where, f"nested more than {MAX_DEPTH} levels deep",
                                 f"{depth} levels", f"at most {MAX_DEPTH} levels of lists and mappings")
        self.walking.add(id(node))
        size = 1
        self._add(1, line, where)
        if isinstance(node, SequenceNode):
            for i, item in enumerate(node.value):
                size += self.check(item, f"{where}[{i}]", depth + 1, self.line_of(node, i, item))
        elif isinstance(node, MappingNode):
            size += self._mapping(node, where, depth)
        self.walking.discard(id(node))
        self.sizes[id(node)] = size
        return size

    def _mapping(self, node: MappingNode, where: str, depth: int) -> int:
        size, seen = 0, {}
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else None
            path = name if where == "(top level)" else f"{where}.{name}"
            if not isinstance(key, ScalarNode):
                raise StackYamlError(key.start_mark.line + 1, where, "a key must be a plain name",
                                     "a list or mapping as a key", "a name such as 'woocommerce-dr:domain'")
            if key.tag != _CORE + "merge":
                identity = (key.tag, key.value)
                if identity in seen:
                    raise StackYamlError(
                        key.start_mark.line + 1, path,
                        f"duplicate key, first given at line {seen[identity]}", f"{name!r} twice",
                        "each key once per mapping, as the Pulumi CLI requires")
                seen[identity] = key.start_mark.line + 1
            size += self.check(key, path, depth + 1, key.start_mark.line + 1)
            size += self.check(value, path, depth + 1, self.line_of(node, key, value))
        return size

    def _add(self, count: int, line: int, where: str) -> int:
        self.total += count
        if self.total > MAX_VALUES:
            raise StackYamlError(
                line, where,
                f"the file expands to more than {MAX_VALUES} values once its aliases are expanded",
                f"more than {MAX_VALUES} values", f"at most {MAX_VALUES} values, every alias expanded")
        return count


def _index_key(index: Any) -> Any:
    """A sequence index as is, a mapping's key node by identity."""
    return id(index) if isinstance(index, Node) else index


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE):] if tag.startswith(_CORE) else tag
