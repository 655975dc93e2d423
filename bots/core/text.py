"""Text helpers every adapter needs: splitting to a platform's length limit and turning the
templates' small HTML subset into plain text for platforms that have no markup."""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"<(/?)([a-zA-Z]+)([^>]*)>")
_HREF = re.compile(r"""href\s*=\s*["']([^"']*)["']""")
_BREAK_PREFERENCES = ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ")


def html_to_plain(text: str) -> str:
    """Strip tags, keep link targets visibly, unescape entities."""

    def replace(match: re.Match[str]) -> str:
        closing, name, attrs = match.groups()
        if name.lower() == "a" and not closing:
            href = _HREF.search(attrs)
            return "\x02" + (href.group(1) if href else "") + "\x03"
        if name.lower() == "a" and closing:
            return "\x04"
        if name.lower() == "br":
            return "\n"
        return ""

    stripped = _TAG.sub(replace, text)
    # "\x02url\x03label\x04" -> "label (url)"
    stripped = re.sub(
        r"\x02([^\x02\x03]*)\x03([^\x04]*)\x04",
        lambda m: (
            m.group(2)
            if not m.group(1) or m.group(1) == m.group(2)
            else f"{m.group(2)} ({m.group(1)})"
        ),
        stripped,
    )
    return html.unescape(re.sub(r"[\x02\x03\x04]", "", stripped))


def split_text(text: str, limit: int, *, html_markup: bool = True) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` characters, preferring paragraph, then
    line, then sentence, then word boundaries; never inside an HTML tag or entity. Tags open
    at a cut are closed at the end of the part and reopened at the start of the next, so
    every part is valid markup on its own."""
    if limit < 16:
        raise ValueError("limit too small")
    parts: list[str] = []
    rest = text
    carry: list[str] = []  # open tags to reopen in the next part
    while rest:
        prefix = "".join(carry)
        budget = limit - len(prefix)
        if len(rest) <= budget and not carry:
            parts.append(rest)
            break
        if len(prefix) + len(rest) <= limit:
            parts.append(prefix + rest)
            break
        # leave room for closing tags
        budget -= sum(len(_closing(t)) for t in carry) + 32 if html_markup else 0
        cut = _find_cut(rest, max(budget, 8), html_markup)
        chunk, rest = rest[:cut], rest[cut:].lstrip(" \n")
        body = prefix + chunk.rstrip()
        if html_markup:
            opened = _open_tags_after(carry, chunk)
            body += "".join(_closing(t) for t in reversed(opened))
            carry = opened
        if body.strip():
            parts.append(body)
    return parts


def _find_cut(text: str, budget: int, html_markup: bool) -> int:
    window = text[:budget]
    for sep in _BREAK_PREFERENCES:
        pos = window.rfind(sep)
        if pos > budget // 3:
            cut = pos + len(sep)
            if not html_markup or _safe(text, cut):
                return cut
    cut = budget
    while html_markup and cut > 1 and not _safe(text, cut):
        cut -= 1
    return cut


def _safe(text: str, cut: int) -> bool:
    """True when position ``cut`` is not inside a tag or an entity."""
    head = text[:cut]
    if head.rfind("<") > head.rfind(">"):
        return False
    amp = head.rfind("&")
    return not (amp != -1 and ";" not in head[amp:] and cut - amp < 10)


def _open_tags_after(carry: list[str], chunk: str) -> list[str]:
    stack = list(carry)
    for match in _TAG.finditer(chunk):
        closing, name = match.group(1), match.group(2).lower()
        if name == "br":
            continue
        if closing:
            for i in range(len(stack) - 1, -1, -1):
                if _tag_name(stack[i]) == name:
                    del stack[i]
                    break
        else:
            stack.append(match.group(0))
    return stack


def _tag_name(tag: str) -> str:
    m = _TAG.match(tag)
    return m.group(2).lower() if m else ""


def _closing(tag: str) -> str:
    return f"</{_tag_name(tag)}>"
