"""YAML loading that remembers where every value came from, and pydantic validation that
reports problems as ``file:line: message``.

Admins edit these files by hand in git; an error must point at the line to fix, not at a
Python traceback. PyYAML's composed node tree carries line marks, so we build the plain data
and, beside it, a map from each key path to its line.
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in an admin's file."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line or 1}: {self.message}"


class ProblemsError(Exception):
    """One or more problems found while loading files; ``str()`` lists them one per line."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(slots=True)
class YamlDocument:
    """Parsed YAML data plus the line of each key path (1-based)."""

    path: Path
    data: Any
    lines: dict[Loc, int]
    #: the line where a scalar's text begins (the line after ``|`` for a block scalar)
    content_lines: dict[Loc, int] = field(default_factory=dict)
    #: one problem per ``${VAR}`` whose variable is not set; the reference stays in the data
    #: as written, so the rest of the file is still checked (offline commands ignore these)
    unresolved: list[Problem] = field(default_factory=list)

    def content_line_of(self, loc: Loc) -> int | None:
        return self.content_lines.get(tuple(loc)) or self.line_of(loc)

    def line_of(self, loc: Loc) -> int | None:
        """The line of the deepest known prefix of ``loc``."""
        for cut in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:cut]))
            if line is not None:
                return line
        return None

    def problem(self, loc: Loc, message: str) -> Problem:
        return Problem(str(self.path), self.line_of(loc), message)


#: a config or FAQ larger than this is a mistake (the biggest real FAQ is ~100 KB)
MAX_BYTES = 2_000_000
#: values a file may hold once its aliases (``*name``) are expanded: a 1 KB file of aliases
#: to aliases ("billion laughs") would otherwise expand to billions and hang ``check`` and ``run``
MAX_VALUES = 200_000

#: libyaml's loader when PyYAML was built with it: the same nodes and line marks, several
#: times faster on a region's config of a thousand institutions
_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


#: what to do about PyYAML's commonest complaints, in words an admin who edits an FAQ by
#: hand understands (the parser's own words name the grammar, not the mistake)
_SYNTAX_HINTS = (
    (
        "expected <block end>",
        "check the indentation of this line and the lines above it: the items of one list,"
        " and the keys of one entry, start at the same column",
    ),
    (
        "mapping values are not allowed here",
        'a text with a colon and a space inside must be put in quotes: - "Вопрос: как записаться?"',
    ),
    (
        "could not find expected ':'",
        "a key lacks its colon, or a quote opened on a line above is not closed",
    ),
    ("found character '\\t'", "indent with spaces, not with tabs"),
    (
        "found unexpected end of stream",
        "a quote opened on a line above is not closed",
    ),
)


def _compose(text: str) -> yaml.Node | None:
    """The node tree; a syntax error is reported by PyYAML's own parser, whose messages
    and lines read better than libyaml's ("mapping values are not allowed here")."""
    try:
        return yaml.compose(text, Loader=_FAST_LOADER)
    except yaml.MarkedYAMLError:
        return yaml.compose(text, Loader=yaml.SafeLoader)


def _expansion_problem(root: yaml.Node) -> tuple[int, str] | None:
    """(line, message) when the tree would expand past MAX_VALUES or contains an alias of a
    value inside that value; else None.

    Composing does not expand aliases (an alias is the anchored node object again), so the
    tree is a graph; counting each distinct node once, with its size remembered, is linear in
    the file while the expansion the builder would do is exponential."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    # an explicit stack: a deeply nested file must not hit Python's recursion limit
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        pairs = _children(node)
        if not children_done:
            open_nodes.add(id(node))
            stack.append((node, True))
            for line, child in pairs:
                if id(child) in open_nodes:
                    return line, "an alias (*name) refers to the value that contains it"
                if id(child) not in sizes:
                    stack.append((child, False))
            continue
        open_nodes.discard(id(node))
        size = 1 + sum(sizes[id(child)] for _, child in pairs)
        if size > MAX_VALUES:
            return node.start_mark.line + 1, (
                f"this value holds more than {MAX_VALUES} values once its aliases (*name) are"
                " expanded; write the values out instead of repeating aliases of aliases"
            )
        sizes[id(node)] = size
    return None


def _children(node: yaml.Node) -> list[tuple[int, yaml.Node]]:
    """A node's direct children, each with the line where it is referred to."""
    if isinstance(node, yaml.MappingNode):
        out: list[tuple[int, yaml.Node]] = []
        for key, value in node.value:
            line = key.start_mark.line + 1
            out.append((line, key))
            out.append((line, value))
        return out
    if isinstance(node, yaml.SequenceNode):
        return [(item.start_mark.line + 1, item) for item in node.value]
    return []


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_yaml(path: Path, *, expand_env: bool = False, text: str | None = None) -> YamlDocument:
    """Read a YAML file; with ``expand_env`` substitute ``${VAR}`` and ``${VAR:-default}``.

    Raises ProblemsError naming file and line for syntax errors or a missing file. A
    variable that is not set is not raised but listed in ``unresolved``: ``check`` reports it
    beside every other problem in one pass, and offline commands do not need it at all.
    ``text`` is the file's content when the caller has already read it (:func:`read_text`).
    """
    if text is None:
        text = read_text(path)
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or str(exc)
        hint = next((h for words, h in _SYNTAX_HINTS if words in reason), None)
        reason += f" ({hint})" if hint else ""
        raise ProblemsError([Problem(str(path), line, f"YAML syntax error: {reason}")]) from None
    too_big = None if node is None else _expansion_problem(node)
    if too_big is not None:
        raise ProblemsError([Problem(str(path), *too_big)])
    doc = YamlDocument(path, None, {})
    problems: list[Problem] = []
    if node is not None:
        doc.data = _build(node, (), doc, problems, path, expand_env)
    if problems:
        raise ProblemsError(problems)
    return doc


def read_text(path: Path) -> str:
    """The file's text; ProblemsError naming the file when it is missing, unreadable or
    larger than MAX_BYTES."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            message = f"the file is {size} bytes long, more than the {MAX_BYTES} a file may have"
            raise ProblemsError([Problem(str(path), None, message)])
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProblemsError([Problem(str(path), None, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemsError([Problem(str(path), None, f"cannot read: {exc}")]) from None


def _build(
    node: yaml.Node,
    loc: Loc,
    doc: YamlDocument,
    problems: list[Problem],
    path: Path,
    expand_env: bool,
) -> Any:
    lines = doc.lines
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node)  # scalars only
            if isinstance(key, list | dict):
                problems.append(
                    Problem(str(path), key_node.start_mark.line + 1, "a key must be text")
                )
                continue
            key = str(key) if not isinstance(key, str | int) else key
            if key in result:
                problems.append(
                    Problem(str(path), key_node.start_mark.line + 1, f"duplicate key {key!r}")
                )
            child = (*loc, key)
            lines[child] = key_node.start_mark.line + 1
            result[key] = _build(value_node, child, doc, problems, path, expand_env)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*loc, i), doc, problems, path, expand_env)
            for i, item in enumerate(node.value)
        ]
    block = isinstance(node, yaml.ScalarNode) and node.style in ("|", ">")
    doc.content_lines[loc] = node.start_mark.line + 1 + (1 if block else 0)
    value = _construct(node)
    if expand_env and isinstance(value, str) and "${" in value:
        value = _expand(value, node.start_mark.line + 1, doc.unresolved, path)
    return value


def _construct(node: yaml.Node) -> Any:
    """Build a scalar with YAML's safe rules (so `yes`, `12`, `2026-09-01` keep their types)."""
    try:
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)
    except (ValueError, OverflowError):
        # 2026-13-04 has the shape of a date, so YAML builds one and fails: keep the text,
        # and validation says in words what is wrong with it
        return node.value if isinstance(node, yaml.ScalarNode) else None


def _expand(value: str, line: int, problems: list[Problem], path: Path) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is not None:
            return found
        if default is not None:
            return default
        problems.append(
            Problem(
                str(path),
                line,
                f"environment variable {name} is not set; export it before starting the bot"
                f" (e.g. `export {name}=...` or a line {name}=... in the env file)",
            )
        )
        return match.group(0)

    return _ENV_REF.sub(substitute, value)


def is_unresolved(value: str) -> bool:
    """True for a value still holding a ``${VAR}`` whose variable is not set: validators
    skip their shape checks on it (the missing variable is already one problem)."""
    return _ENV_REF.search(value) is not None


def validate(model: type[M], doc: YamlDocument, *, loc: Loc = (), data: Any = None) -> M:
    """Validate ``doc.data`` (or ``data`` found at ``loc``) against ``model``.

    Raises ProblemsError with one ``file:line`` problem per pydantic error; an unknown key
    gets a "did you mean" hint drawn from the fields allowed at that place.
    """
    payload = doc.data if data is None else data
    try:
        return model.model_validate(payload if payload is not None else {})
    except ValidationError as exc:
        problems = [_problem_of(model, doc, loc, err) for err in exc.errors()]
        raise ProblemsError(_one_per_place(problems)) from None


def _one_per_place(problems: list[Problem]) -> list[Problem]:
    """A value a union rejects (``to: everyone``: neither "subscribers" nor a list) gets one
    problem per alternative from pydantic; an admin reads one: "must be X; or Y"."""
    merged: dict[tuple[str, int | None, str], Problem] = {}
    for problem in problems:
        place, sep, message = problem.message.partition(": ")
        key = (problem.file, problem.line, place if sep else problem.message)
        earlier = merged.get(key)
        if earlier is None or not sep:
            merged.setdefault(key, problem)
            continue
        merged[key] = Problem(problem.file, problem.line, f"{earlier.message}; or {message}")
    return list(merged.values())


def _problem_of(model: type[BaseModel], doc: YamlDocument, base: Loc, err: Any) -> Problem:
    where: Loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
    full = (*base, *where)
    if err["type"] == "extra_forbidden":
        key = str(where[-1]) if where else ""
        allowed = _allowed_keys(model, where[:-1])
        hint = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        message = f"unknown key {key!r}"
        if hint:
            message += f"; did you mean {hint[0]!r}?"
        elif allowed:
            message += f"; allowed here: {', '.join(sorted(allowed))}"
        return doc.problem(full, message)
    if err["type"] == "missing":
        return doc.problem(
            full[:-1], f"{place(full[:-1])}: the required key {full[-1]!r} is missing"
        )
    return doc.problem(full, f"{place(full)}: {plain_message(err, full)}")


def place(loc: Loc) -> str:
    """A key path as an admin reads it: ``entries #9.answer``, list items counted from 1."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f" #{part + 1}"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


#: an example of a valid value, by the key it is written under
EXAMPLES: dict[str, str] = {
    "institutions": "school-17",
    "id": "-1001234567890",
    "group_id": "123456",
    "port": "8080",
    "platform": "telegram",
    "holidays": "2026-11-04",
    "at": '"2026-09-01 09:00"',
    "first_response": "8h or 8 ч",
    "remind_before": "1h or 60 мин",
    "auto_close": "3d or 3 дня",
    "reopen_window": "2d or 2 дня",
    "retention": "180d or 180 дней",
    "every": "1w or 7 дней",
    "grace": "1h or 1 ч",
    "token": '"${TG_SCHOOL17}"',
}

_PLAIN = {
    "string_too_short": "must not be empty",
    "too_short": "needs at least {min_length} item(s)",
    "too_long": "may have at most {max_length} item(s)",
    "string_too_long": "may be at most {max_length} characters long",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be text",
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be {ge} or more",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "date_parsing": "must be a date written as YYYY-MM-DD",
    "date_type": "must be a date written as YYYY-MM-DD",
    "date_from_datetime_parsing": "must be a date written as YYYY-MM-DD",
    "datetime_parsing": 'must be a date and time written as "YYYY-MM-DD HH:MM"',
    "datetime_type": 'must be a date and time written as "YYYY-MM-DD HH:MM"',
    "datetime_from_date_parsing": 'must be a date and time written as "YYYY-MM-DD HH:MM"',
    "dict_type": "must be a group of keys (key: value lines), not a single value",
    "model_type": "must be a group of keys (key: value lines), not a single value",
    "model_attributes_type": "must be a group of keys (key: value lines), not a single value",
    "list_type": "must be a list (lines starting with '- ', or [a, b])",
    "literal_error": "must be one of: {expected}",
    "enum": "must be one of: {expected}",
}


def plain_message(err: Any, loc: Loc) -> str:
    """pydantic's error in words an admin understands, with an example of a valid value;
    the library's own English never reaches people."""
    kind = str(err["type"])
    ctx = dict(err.get("ctx") or {})
    keys = [p for p in loc if isinstance(p, str)]
    example = EXAMPLES.get(keys[-1]) if keys else None
    if kind == "value_error":
        message = str(err["msg"]).removeprefix("Value error, ")
    elif kind == "string_pattern_mismatch":
        value = err.get("input")
        if keys[-2:-1] == ["institutions"] or keys == ["institutions"]:
            return (
                f"the institution id {value!r} may hold only lowercase Latin letters, digits,"
                " '-' and '_', starting with a letter or digit (e.g. school-17)"
            )
        message = f"{value!r} has characters not allowed here (Latin letters, digits, - . _)"
        example = example or "weekly-menu"
    elif kind == "string_type" and isinstance(err.get("input"), dict):
        # "- Вопрос: как сменить врача?" is read as a key and its value, not as a text
        message = (
            "must be text; a text with a colon and a space inside must be put in quotes:"
            ' - "Вопрос: как записаться?"'
        )
    elif kind in _PLAIN:
        try:
            message = _PLAIN[kind].format(**ctx)
        except (KeyError, IndexError):
            message = _PLAIN[kind]
        message = message.replace("'", "") if kind in ("literal_error", "enum") else message
    else:
        message = f"this value is not allowed here ({kind.replace('_', ' ')})"
    if example and "e.g." not in message and kind not in ("literal_error", "enum"):
        message += f", e.g. {example}"
    return message


def _is_union_tag(part: str | int) -> bool:
    # pydantic inserts the member type name into loc for unions, e.g. 'function-after[...]'
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "list[...]"})


def _allowed_keys(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names (and aliases) of the model found by walking ``loc`` through ``model``.

    A field typed ``dict[str, Model]`` consumes the free-text key that follows it.
    """
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if isinstance(current, _MapOf):
            current = current.model
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        current = _field_target(current, part)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [field.alias or name for name, field in current.model_fields.items()]
    return []


@dataclass(frozen=True, slots=True)
class _MapOf:
    model: type[BaseModel]


def _field_target(model: type[BaseModel], name: str) -> Any:
    """The model a field holds (or a _MapOf for dict[str, Model]), or None."""
    field = model.model_fields.get(name)
    if field is None:
        field = next((f for f in model.model_fields.values() if f.alias == name), None)
    if field is None:
        return None
    return _model_in(field.annotation)


def _model_in(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if origin is dict and len(args) == 2:
        inner = _model_in(args[1])
        return _MapOf(inner) if isinstance(inner, type) else None
    for arg in args:
        found = _model_in(arg)
        if found is not None:
            return found
    return None
