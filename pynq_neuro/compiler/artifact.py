"""Compiled artifacts: write, verify and read (numpy only; the loader runs on the board).

An artifact is a directory::

    manifest.json      format version, hardware parameters, layers, memory map, checksums
    mem/*.mem          one $readmemh image per memory bank (hex, one word per line)
    coe/*.coe          the same images as Vivado coefficient files
    network.bin        every bank in one packed stream, for loading at run time
    neuro_params.vh    Verilog header with the synthesis parameters

``docs/artifact-format.md`` specifies every field and bit layout.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..golden.network import IntegerNetwork, IntLayer, NetworkError
from .mapping import Folding, LayerMap, clog2

FORMAT = "pynq-neuro-artifact"
VERSION = 1
BIN_MAGIC = b"PNNB"
BANK_KINDS = {"synapse": 0, "index": 1, "params": 2}
# Fields of each layer's hardware description; a core is built for exactly these values.
HW_LAYER_FIELDS = (
    "in_channels", "out_channels", "taps", "stride", "in_frames", "out_frames", "frames_used",
    "frames_emitted", "weight_bits", "act_bits", "groups", "lanes", "locals", "local_channels",
    "local_bits", "entry_bits", "word_bits", "acc_bits", "levels", "param_bits",
    "synapse_depth", "addr_bits", "count_bits", "index_bits", "index_depth",
)


class ArtifactError(ValueError):
    """An artifact is missing, corrupt, inconsistent, or not for this hardware."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def layer_hw(lm: LayerMap) -> dict[str, int]:
    """The hardware parameters of one layer (what the neuron array is built for)."""
    L = lm.layer
    return {
        "in_channels": L.in_channels, "out_channels": L.out_channels, "taps": L.taps,
        "stride": L.stride, "in_frames": L.in_frames, "out_frames": L.out_frames,
        "frames_used": lm.frames_used, "frames_emitted": lm.frames_emitted,
        "weight_bits": L.weight_bits, "act_bits": L.act_bits or 0, "groups": lm.groups,
        "lanes": lm.lanes, "locals": lm.locals, "local_channels": lm.local_channels,
        "local_bits": lm.local_bits, "entry_bits": lm.entry_bits, "word_bits": lm.word_bits,
        "acc_bits": lm.acc_bits, "levels": lm.levels, "param_bits": lm.param_bits,
        "synapse_depth": lm.synapse_depth, "addr_bits": lm.addr_bits,
        "count_bits": lm.count_bits, "index_bits": lm.index_bits,
        "index_depth": lm.index_depth,
    }


@dataclass
class Bank:
    """One memory image."""

    name: str
    layer: int
    kind: str
    bank: int
    width: int
    words: list[int]

    @property
    def depth(self) -> int:
        return len(self.words)


def banks_of(maps: list[LayerMap]) -> list[Bank]:
    """Every memory image of a mapped network, in a fixed order."""
    banks = []
    for lm in maps:
        l = lm.index
        for g in range(lm.groups):
            depth = lm.synapse_depth
            words = lm.synapse_words[g] + [0] * (depth - len(lm.synapse_words[g]))
            banks.append(Bank(f"L{l}_syn_g{g}", l, "synapse", g, lm.word_bits, words))
        for g in range(lm.groups):
            banks.append(Bank(f"L{l}_idx_g{g}", l, "index", g, lm.index_bits,
                              lm.index_words(g)))
        # thresholds/biases of all lanes side by side: word i holds local index i of every lane
        params = []
        for i in range(lm.locals):
            word = 0
            for j in range(lm.lanes):
                word |= lm.param_words[j][i] << (j * lm.param_bits)
            params.append(word)
        banks.append(Bank(f"L{l}_par", l, "params", 0, lm.lanes * lm.param_bits, params))
    return banks


def hex_digits(width: int) -> int:
    return max(1, -(-width // 4))


def mem_text(bank: Bank) -> str:
    d = hex_digits(bank.width)
    return "".join(f"{w:0{d}x}\n" for w in bank.words)


def coe_text(bank: Bank) -> str:
    d = hex_digits(bank.width)
    body = ",\n".join(f"{w:0{d}x}" for w in bank.words) or "0"
    return ("; pynq-neuro memory image " + bank.name + f" ({bank.depth} x {bank.width} bits)\n"
            "memory_initialization_radix=16;\nmemory_initialization_vector=\n" + body + ";\n")


def words32(value: int, width: int) -> list[int]:
    """Little-endian 32-bit chunks of a ``width``-bit word."""
    return [(value >> (32 * i)) & 0xFFFFFFFF for i in range(-(-width // 32))]


def pack_binary(banks: list[Bank]) -> bytes:
    """The run-time load stream (see docs/artifact-format.md)."""
    body = bytearray()
    for b in banks:
        chunks = -(-b.width // 32)
        body += struct.pack("<HBBIII", b.layer, BANK_KINDS[b.kind], b.bank, b.depth, b.width,
                            b.depth * chunks)
        for w in b.words:
            body += struct.pack(f"<{chunks}I", *words32(w, b.width))
    header = struct.pack("<4sIII", BIN_MAGIC, VERSION, len(banks), len(body) // 4)
    return header + bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


def unpack_binary(data: bytes) -> list[Bank]:
    """Banks from a load stream; raises :class:`ArtifactError` on any inconsistency."""
    if len(data) < 20 or data[:4] != BIN_MAGIC:
        raise ArtifactError("network.bin: bad magic (not a pynq-neuro load stream)")
    _, version, n_banks, n_words = struct.unpack_from("<4sIII", data, 0)
    if version != VERSION:
        raise ArtifactError(f"network.bin: unsupported version {version}")
    body = data[16:-4]
    if len(body) != 4 * n_words:
        raise ArtifactError(f"network.bin: {len(body)} payload bytes, header says {4 * n_words}")
    (crc,) = struct.unpack_from("<I", data, len(data) - 4)
    if zlib.crc32(body) != crc:
        raise ArtifactError("network.bin: CRC mismatch (corrupt stream)")
    kinds = {v: k for k, v in BANK_KINDS.items()}
    banks, off = [], 0
    for _ in range(n_banks):
        if off + 16 > len(body):
            raise ArtifactError("network.bin: truncated bank header")
        layer, kind, bank, depth, width, count = struct.unpack_from("<HBBIII", body, off)
        off += 16
        chunks = -(-width // 32) if width else 0
        if kind not in kinds or width == 0 or count != depth * chunks or off + 4 * count > len(body):
            raise ArtifactError("network.bin: inconsistent bank header")
        vals = struct.unpack_from(f"<{count}I", body, off)
        off += 4 * count
        words = [sum(v << (32 * i) for i, v in enumerate(vals[d * chunks:(d + 1) * chunks]))
                 for d in range(depth)]
        banks.append(Bank("", layer, kinds[kind], bank, width, words))
    if off != len(body):
        raise ArtifactError("network.bin: trailing bytes after the last bank")
    return banks


def verilog_header(manifest: dict[str, Any]) -> str:
    """Synthesis parameters as Verilog macros, one set per layer."""
    hw = manifest["hardware"]
    lines = [
        "// Synthesis parameters of a pynq-neuro network; generated by `pynq-neuro compile`.",
        f"// network: {manifest['network']['name']}",
        "`ifndef PYNQ_NEURO_PARAMS_VH",
        "`define PYNQ_NEURO_PARAMS_VH",
        f"`define PN_FORMAT_VERSION {VERSION}",
        f"`define PN_NUM_LAYERS {len(hw['layers'])}",
        f"`define PN_INPUT_BITS {manifest['network']['input_bits']}",
        f"`define PN_NUM_CLASSES {manifest['network']['num_classes']}",
        f"`define PN_PIXEL_BEAT_BITS {hw['pixel_beat_bits']}",
    ]
    for name, value in hw["constants"].items():
        lines.append(f"`define PN_{name} {value}")
    load_bits = max(max(l["word_bits"], l["index_bits"], l["lanes"] * l["param_bits"])
                    for l in hw["layers"])
    lines.append(f"`define PN_LOAD_BITS {load_bits}")
    lines.append(f"`define PN_LOGIT_BITS {hw['layers'][-1]['acc_bits']}")
    lines.append(f"`define PN_FINGERPRINT 64'h{hw['fingerprint']}")
    for i, layer in enumerate(hw["layers"]):
        for key in HW_LAYER_FIELDS:
            lines.append(f"`define PN_L{i}_{key.upper()} {layer[key]}")
    # the same fields as packed vectors, 32 bits per layer, layer 0 least significant, for
    # generate loops: `PN_V_LANES[32*i +: 32]
    for key in HW_LAYER_FIELDS:
        items = ", ".join(f"32'd{layer[key]}" for layer in reversed(hw["layers"]))
        lines.append(f"`define PN_V_{key.upper()} {{{items}}}")
    lines.append("`endif")
    return "\n".join(lines) + "\n"


def write_artifact(directory: str | Path, net: IntegerNetwork, maps: list[LayerMap],
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write an artifact directory and return its manifest."""
    from .cycles import (BEATS_PER_ROW, FRAME_BUFFERS, FRAME_OVERHEAD, RESULT_LATENCY,
                         ROW_BUFFERS, THRESHOLD_BUSY, THRESHOLD_LATENCY)

    out = Path(directory)
    (out / "mem").mkdir(parents=True, exist_ok=True)
    (out / "coe").mkdir(parents=True, exist_ok=True)
    banks = banks_of(maps)
    memories = []
    offset = 16
    for b in banks:
        mem, coe = mem_text(b), coe_text(b)
        (out / "mem" / f"{b.name}.mem").write_text(mem)
        (out / "coe" / f"{b.name}.coe").write_text(coe)
        memories.append({
            "name": b.name, "layer": b.layer, "kind": b.kind, "bank": b.bank,
            "depth": b.depth, "width": b.width, "mem": f"mem/{b.name}.mem",
            "coe": f"coe/{b.name}.coe", "sha256": sha256_bytes(mem.encode()),
            "bin_offset": offset,
        })
        offset += 16 + 4 * b.depth * (-(-b.width // 32))
    blob = pack_binary(banks)
    (out / "network.bin").write_bytes(blob)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "created_by": f"pynq-neuro {__version__}",
        "network": {
            "name": net.meta.get("name", "network"),
            "input_bits": net.input_bits,
            "num_classes": net.num_classes,
            "synapses": net.synapses,
            "meta": net.meta,
        },
        "hardware": {
            "target": "xc7z020clg400-1",
            "pixel_beat_bits": 32,
            "constants": {
                "BEATS_PER_ROW": BEATS_PER_ROW, "ROW_BUFFERS": ROW_BUFFERS,
                "FRAME_BUFFERS": FRAME_BUFFERS, "FRAME_OVERHEAD": FRAME_OVERHEAD,
                "THRESHOLD_LATENCY": THRESHOLD_LATENCY, "THRESHOLD_BUSY": THRESHOLD_BUSY,
                "RESULT_LATENCY": RESULT_LATENCY,
            },
            "layers": [layer_hw(lm) for lm in maps],
        },
        "memories": memories,
        **(extra or {}),
    }
    manifest["hardware"]["fingerprint"] = hardware_fingerprint(manifest["hardware"])
    vh = verilog_header(manifest)
    (out / "neuro_params.vh").write_text(vh)
    manifest["files"] = {"network.bin": sha256_bytes(blob), "neuro_params.vh": sha256_bytes(vh.encode())}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def hardware_fingerprint(hw: dict[str, Any]) -> str:
    """Short hash of the hardware parameters: equal fingerprints, compatible builds."""
    core = {"layers": [{k: l[k] for k in HW_LAYER_FIELDS} for l in hw["layers"]],
            "constants": hw["constants"], "pixel_beat_bits": hw["pixel_beat_bits"]}
    return sha256_bytes(json.dumps(core, sort_keys=True).encode())[:16]


def _parse_mem(text: str, width: int, depth: int, name: str) -> list[int]:
    words = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("//")[0].strip()
        if not line:
            continue
        try:
            w = int(line, 16)
        except ValueError:
            raise ArtifactError(f"{name}: line {n} is not hexadecimal") from None
        if w >> width:
            raise ArtifactError(f"{name}: line {n} is wider than {width} bits")
        words.append(w)
    if len(words) != depth:
        raise ArtifactError(f"{name}: {len(words)} words, manifest says {depth}")
    return words


@dataclass
class Artifact:
    """A verified artifact: its manifest, banks and the network they encode."""

    path: Path
    manifest: dict[str, Any]
    banks: list[Bank]
    network: IntegerNetwork

    @property
    def fingerprint(self) -> str:
        return self.manifest["hardware"]["fingerprint"]

    def check_hardware(self, hw: dict[str, Any]) -> None:
        """Refuse unless the artifact was compiled for hardware ``hw`` (a manifest's
        ``hardware`` section or the parameters read back from a core)."""
        mine = self.manifest["hardware"]
        if len(hw.get("layers", [])) != len(mine["layers"]):
            raise ArtifactError(f"artifact has {len(mine['layers'])} layers, the hardware "
                                f"{len(hw.get('layers', []))}")
        for i, (a, b) in enumerate(zip(mine["layers"], hw["layers"])):
            diff = [k for k in HW_LAYER_FIELDS if a[k] != b.get(k)]
            if diff:
                k = diff[0]
                raise ArtifactError(f"layer {i}: artifact needs {k}={a[k]}, hardware was built "
                                    f"with {k}={b.get(k)} (compile for this hardware)")


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ArtifactError(message)


def load_artifact(directory: str | Path, source: str = "mem") -> Artifact:
    """Read and verify an artifact; ``source`` is ``"mem"`` (the .mem images) or ``"bin"``
    (the packed load stream). The network is rebuilt from the memory images alone."""
    path = Path(directory)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no manifest.json (not an artifact directory)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path}/manifest.json: not valid JSON ({e})") from None
    _require(isinstance(manifest, dict) and manifest.get("format") == FORMAT,
             f"{path}: not a {FORMAT}")
    _require(manifest.get("version") == VERSION,
             f"{path}: artifact version {manifest.get('version')} is not supported "
             f"(this pynq-neuro reads version {VERSION})")
    try:
        hw, memories, files = manifest["hardware"], manifest["memories"], manifest["files"]
        _require(hardware_fingerprint(hw) == hw["fingerprint"],
                 f"{path}: hardware parameters do not match their fingerprint")
        for name, digest in files.items():
            data = (path / name).read_bytes()
            _require(sha256_bytes(data) == digest, f"{path}/{name}: SHA-256 mismatch")
        if source == "bin":
            banks = unpack_binary((path / "network.bin").read_bytes())
            _require(len(banks) == len(memories), "network.bin: bank count differs from manifest")
            for b, m in zip(banks, memories):
                _require((b.layer, b.kind, b.bank, b.depth, b.width) ==
                         (m["layer"], m["kind"], m["bank"], m["depth"], m["width"]),
                         f"network.bin: bank {m['name']} differs from the manifest")
                b.name = m["name"]
        else:
            banks = []
            for m in memories:
                text = (path / m["mem"]).read_bytes()
                _require(sha256_bytes(text) == m["sha256"], f"{path}/{m['mem']}: SHA-256 mismatch")
                words = _parse_mem(text.decode("ascii", "replace"), m["width"], m["depth"], m["mem"])
                banks.append(Bank(m["name"], m["layer"], m["kind"], m["bank"], m["width"], words))
        net = network_from_banks(manifest, banks)
    except (KeyError, TypeError, IndexError) as e:
        raise ArtifactError(f"{path}: incomplete or malformed manifest ({e!r})") from None
    except FileNotFoundError as e:
        raise ArtifactError(f"{path}: missing file {Path(e.filename).name}") from None
    except NetworkError as e:
        raise ArtifactError(f"{path}: memory images do not form a valid network: {e}") from None
    return Artifact(path, manifest, banks, net)


def network_from_banks(manifest: dict[str, Any], banks: list[Bank]) -> IntegerNetwork:
    """Rebuild the integer network from memory images and the manifest's layer parameters."""
    from .mapping import unpack_layer

    hw_layers = manifest["hardware"]["layers"]
    by_key = {(b.layer, b.kind, b.bank): b for b in banks}
    layers: list[IntLayer] = []
    for i, h in enumerate(hw_layers):
        last = i == len(hw_layers) - 1
        _require(h["levels"] == (1 if last else 2 ** h["act_bits"] - 1),
                 f"layer {i}: levels do not match act_bits")
        _require(h["local_bits"] == clog2(h["locals"]) and
                 h["locals"] == -(-h["out_channels"] // h["lanes"]) and
                 h["local_channels"] == -(-h["in_channels"] // h["groups"]) and
                 h["entry_bits"] == 1 + h["local_bits"] + h["weight_bits"] and
                 h["word_bits"] == h["lanes"] * h["entry_bits"] and
                 h["param_bits"] == h["levels"] * h["acc_bits"] and
                 h["index_bits"] == h["count_bits"] + h["addr_bits"] and
                 h["index_depth"] == h["taps"] * h["local_channels"],
                 f"layer {i}: inconsistent hardware parameters")
        G, P = h["groups"], h["lanes"]
        syn = [by_key[(i, "synapse", g)] for g in range(G)]
        idx = [by_key[(i, "index", g)] for g in range(G)]
        par = by_key[(i, "params", 0)]
        for b in syn:
            _require(b.width == h["word_bits"] and b.depth == h["synapse_depth"],
                     f"layer {i}: synapse bank shape differs from the parameters")
        for b in idx:
            _require(b.width == h["index_bits"] and b.depth == h["index_depth"],
                     f"layer {i}: index bank shape differs from the parameters")
        _require(par.width == P * h["param_bits"] and par.depth == h["locals"],
                 f"layer {i}: parameter bank shape differs from the parameters")
        K, cl = h["taps"], h["local_channels"]
        amask = (1 << h["addr_bits"]) - 1
        base = np.array([[w & amask for w in b.words] for b in idx], np.int64).reshape(G, K, cl)
        words = np.array([[w >> h["addr_bits"] for w in b.words] for b in idx],
                         np.int64).reshape(G, K, cl)
        _require(bool(np.all(base + words <= h["synapse_depth"])),
                 f"layer {i}: index table points outside the synapse memory")
        pmask = (1 << h["param_bits"]) - 1
        param_words = [[(w >> (j * h["param_bits"])) & pmask for w in par.words] for j in range(P)]
        shell = IntLayer(h["in_channels"], h["out_channels"], K, h["stride"], h["in_frames"],
                         h["weight_bits"], np.zeros((h["out_channels"], K, h["in_channels"]),
                                                     np.int64), None if last else h["act_bits"])
        lm = LayerMap(i, shell, Folding(G, P), h["frames_used"], h["frames_emitted"],
                      h["acc_bits"], h["local_bits"], words, base, [b.words for b in syn],
                      param_words)
        try:
            codes, mask, params = unpack_layer(lm)
        except ValueError as e:
            raise ArtifactError(str(e)) from None
        layer = IntLayer(h["in_channels"], h["out_channels"], K, h["stride"], h["in_frames"],
                         h["weight_bits"], codes, None if last else h["act_bits"],
                         None if last else params, params[:, 0] if last else None,
                         None if mask.all() else mask)
        layers.append(layer)
    net = IntegerNetwork(manifest["network"]["input_bits"], layers,
                         manifest["network"]["num_classes"], manifest["network"].get("meta", {}))
    net.validate()
    return net
