"""Everything that runs on the board imports and works with numpy alone (no torch, no pynq,
no matplotlib), as on the PYNQ-Z2 image."""

from __future__ import annotations

import json

from helpers import run_numpy_only


def test_blocker_really_blocks():
    r = run_numpy_only("import torch")
    assert r.returncode != 0 and "blocked on the board" in r.stderr


def test_board_modules_import_and_classify_with_numpy_only():
    r = run_numpy_only("""
        import json, numpy as np
        import pynq_neuro, pynq_neuro.data, pynq_neuro.golden, pynq_neuro.zoo, pynq_neuro.driver, pynq_neuro.driver.board
        from pynq_neuro.cli import main
        from pynq_neuro.golden import run
        x, y = pynq_neuro.data.load_mnist('test')
        name = [n for n in pynq_neuro.zoo.names() if pynq_neuro.zoo.network_path(n)][0]
        res = run(pynq_neuro.zoo.load_network(name), x[:300])
        print(json.dumps({'acc': float((res.classes == y[:300]).mean()),
                          'mods': sorted(m for m in sys.modules if m.split('.')[0] == 'torch')}))
        main(['eval', name, '--images', '300', '--json'])
    """)
    assert r.returncode == 0, r.stderr
    first, rest = r.stdout.split("\n", 1)
    info = json.loads(first)
    assert info["mods"] == [] and info["acc"] > 0.95
    out = json.loads(rest)
    assert out["engine"] == "golden" and out["images"] == 300 and out["accuracy"] > 0.95


def test_every_compiler_module_imports_with_numpy_only():
    """The compiler runs on the board: none of its modules may pull in torch (the compression
    passes, which do, live in ``pynq_neuro.compress``)."""
    r = run_numpy_only("""
        import importlib, pkgutil, json
        import pynq_neuro.compiler as pkg
        names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + '.'))
        for name in names:
            importlib.import_module(name)
        print(json.dumps(names))
    """)
    assert r.returncode == 0, r.stderr
    names = json.loads(r.stdout)
    assert "pynq_neuro.compiler.compile" in names and "pynq_neuro.compiler.artifact" in names
    assert not any("factorize" in n or "compress" in n for n in names), names


def test_compression_lives_outside_the_compiler():
    r = run_numpy_only("import pynq_neuro.compress.factorize")
    assert r.returncode != 0 and "blocked on the board: torch" in r.stderr


def test_compile_and_artifact_loading_need_numpy_only(tmp_path):
    r = run_numpy_only(f"""
        import numpy as np
        from pynq_neuro import zoo
        from pynq_neuro.compiler.artifact import load_artifact
        from pynq_neuro.compiler.compile import CompileConfig, compile_network
        from pynq_neuro.data import load_mnist
        from pynq_neuro.golden import run
        x, y = load_mnist('test')
        name = zoo.hardware_default()
        compile_network(name, r'{tmp_path}/a', CompileConfig(sample_digits=200), x[:200])
        art = load_artifact(r'{tmp_path}/a', source='bin')
        same = (run(art.network, x[:500]).logits == run(zoo.load_network(name), x[:500]).logits)
        print(bool(same.all()))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"
