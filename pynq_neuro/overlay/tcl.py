"""Tcl evaluated by a real interpreter: ``tkinter.Tcl()`` (the standard library's embedded Tcl)
or, where tkinter is missing, ``tclsh`` in a subprocess.

Every evaluation ends in ``pn_emit LIST``, which writes each element as ``<length>:<text>``;
:func:`evaluate` decodes that, so both back ends return the same Python strings.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from . import SpecError

_EMIT = """
proc pn_emit {items} {
    set out ""
    foreach item $items {
        append out [string length $item] : $item
    }
    return $out
}
"""


_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def quote(text: str) -> str:
    """``text`` as one Tcl word, whatever it holds (backslash-quoted)."""
    if not text:
        return "{}"
    return "".join(_ESCAPES.get(c, "\\" + c if c in '{}[]$"\\; ' else c) for c in text)


def _decode(encoded: str) -> list[str]:
    out, i = [], 0
    while i < len(encoded):
        colon = encoded.index(":", i)
        n = int(encoded[i:colon])
        out.append(encoded[colon + 1:colon + 1 + n])
        i = colon + 1 + n
    return out


@functools.lru_cache(maxsize=1)
def _tkinter_available() -> bool:
    try:
        import tkinter
        tkinter.Tcl()
    except Exception:  # no tkinter, or no Tcl library: fall back to tclsh
        return False
    return True


def backend() -> str:
    """``"tkinter"``, ``"tclsh"`` or ``""`` (no Tcl available)."""
    if _tkinter_available():
        return "tkinter"
    return "tclsh" if shutil.which("tclsh") else ""


def evaluate(script: str, *, timeout_s: float = 60.0) -> list[str]:
    """Run ``script`` in a fresh interpreter; its result must be ``[pn_emit LIST]``. Returns
    the elements of LIST. A Tcl error raises :class:`SpecError` with Tcl's message."""
    kind = backend()
    if kind == "tkinter":
        import tkinter
        interp = tkinter.Tcl()
        try:
            return _decode(str(interp.eval(_EMIT + script)))
        except tkinter.TclError as e:
            raise SpecError(f"Tcl: {e}") from e
    if kind == "tclsh":
        with tempfile.TemporaryDirectory(prefix="pn_tcl_") as tmp:
            body = Path(tmp) / "script.tcl"
            body.write_text(_EMIT + script)
            runner = Path(tmp) / "run.tcl"
            runner.write_text(f"puts -nonewline [source {quote(str(body))}]\n")
            r = subprocess.run([shutil.which("tclsh") or "tclsh", str(runner)], text=True,
                               capture_output=True, timeout=timeout_s, check=False)
        if r.returncode != 0:
            lines = r.stderr.strip().splitlines()
            raise SpecError(f"Tcl: {lines[0] if lines else 'error'}")
        return _decode(r.stdout)
    raise SpecError("no Tcl interpreter: install tkinter (python3-tk) or tclsh (tcl)")


def source_variables(path: Path | str, pattern: str = "PN_*") -> dict[str, str]:
    """The scalar global variables matching ``pattern`` after ``source path``."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"cannot read {p}: no such file")
    items = evaluate(f"""
        source {quote(str(p.resolve()))}
        set out {{}}
        foreach name [lsort [info globals {quote(pattern)}]] {{
            if {{![array exists ::$name]}} {{
                lappend out $name [set ::$name]
            }}
        }}
        pn_emit $out""")
    return dict(zip(items[0::2], items[1::2]))


def split_lists(texts: Sequence[str]) -> list[list[str]]:
    """Each of ``texts`` read as a Tcl list (one interpreter for all of them)."""
    if not texts:
        return []
    items = evaluate(f"""
        set out {{}}
        foreach text [list {' '.join(quote(t) for t in texts)}] {{
            lappend out [llength $text]
            foreach element $text {{
                lappend out $element
            }}
        }}
        pn_emit $out""")
    out, i = [], 0
    while i < len(items):
        n = int(items[i])
        out.append(items[i + 1:i + 1 + n])
        i += 1 + n
    return out


def split_list(text: str) -> list[str]:
    """The elements of one Tcl list."""
    return split_lists([text])[0]


def complete(texts: Iterable[str]) -> list[bool]:
    """``info complete`` of each text: braces, brackets and quotes are closed."""
    texts = list(texts)
    if not texts:
        return []
    items = evaluate(f"""
        set out {{}}
        foreach text [list {' '.join(quote(t) for t in texts)}] {{
            lappend out [info complete $text]
        }}
        pn_emit $out""")
    return [i == "1" for i in items]


def substitute(texts: Sequence[str], variables: dict[str, str]) -> list[str]:
    """``subst -nocommands`` of each text with ``variables`` set (an unknown variable or a
    command substitution raises :class:`SpecError`)."""
    sets = "\n".join(f"set {quote(k)} {quote(v)}" for k, v in variables.items())
    return evaluate(f"""
        {sets}
        set out {{}}
        foreach text [list {' '.join(quote(t) for t in texts)}] {{
            if {{[string first {quote('[')} $text] >= 0}} {{
                error "command substitution in $text"
            }}
            lappend out [subst -nocommands $text]
        }}
        pn_emit $out""")


def tcl_int(value: str) -> int:
    """A Tcl integer literal (decimal or 0x hexadecimal)."""
    try:
        return int(value.strip(), 0)
    except ValueError as e:
        raise SpecError(f"not an integer: {value!r}") from e
