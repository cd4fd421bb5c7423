"""The ports and parameters of a Verilog module, read by pyslang (the slang SystemVerilog
front end): elaborated directions and widths, and how the module uses its reset.

The module is read on its own: an ``include`` that is not found (``neuro_params.vh`` of an
artifact) leaves the parameters without defaults, which does not change the ports.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import SpecError

PYSLANG_MISSING = "the Verilog checks need pyslang (pip install pyslang, or the dev extra)"


def _pyslang():
    try:
        import pyslang
    except ImportError as e:
        raise SpecError(PYSLANG_MISSING) from e
    return pyslang


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "input", "output" or "inout"
    width: int


@dataclass(frozen=True)
class VerilogModule:
    name: str
    parameters: tuple[str, ...]
    ports: dict[str, Port]
    reset_uses: frozenset[str]  # "high" (rst, rst || x) and/or "low" (!rst, ~rst) of reset_port


_DIRECTIONS = {"In": "input", "Out": "output", "InOut": "inout", "Ref": "ref"}


def read_module(text: str, name: str, reset_port: str | None = None) -> VerilogModule:
    """Parameters and ports of module ``name`` in ``text``; with ``reset_port``, the ways
    the module tests that port."""
    pyslang = _pyslang()
    tree = pyslang.syntax.SyntaxTree.fromText(text, f"{name}.v")
    compilation = pyslang.ast.Compilation()
    compilation.addSyntaxTree(tree)
    found = [i for i in compilation.getRoot().topInstances if i.name == name]
    if not found:
        raise SpecError(f"no module {name} in the Verilog text")
    body = found[0].body
    ports = {}
    for p in body.portList:
        direction = _DIRECTIONS.get(p.direction.name, p.direction.name.lower())
        ports[p.name] = Port(p.name, direction, int(p.type.bitWidth))
    params = tuple(p.name for p in body.parameters if p.isPortParam and not p.isLocalParam)
    uses: set[str] = set()
    if reset_port is not None:
        uses = _reset_uses(pyslang, tree, reset_port)
    return VerilogModule(name, params, ports, frozenset(uses))


def _is_port(expr, port: str) -> bool:  # noqa: ANN001 - pyslang syntax node
    return str(expr).strip() == port


def _reset_uses(pyslang, tree, port: str) -> set[str]:  # noqa: ANN001 - pyslang objects
    kind = pyslang.syntax.SyntaxKind
    uses: set[str] = set()

    def visit(node) -> bool:  # noqa: ANN001
        if node.kind == kind.ConditionalStatement:
            for c in node.predicate.conditions:
                if _is_port(c.expr, port):
                    uses.add("high")
        elif node.kind == kind.LogicalOrExpression:
            if _is_port(node.left, port) or _is_port(node.right, port):
                uses.add("high")
        elif node.kind in (kind.UnaryLogicalNotExpression, kind.UnaryBitwiseNotExpression):
            if _is_port(node.operand, port):
                uses.add("low")
        return True

    tree.root.visit(visit)
    return uses


def reset_is_active_low(module: VerilogModule) -> bool | None:
    """Polarity of the reset from its uses (None: not used, or used both ways)."""
    if module.reset_uses == {"low"}:
        return True
    if module.reset_uses == {"high"}:
        return False
    return None
