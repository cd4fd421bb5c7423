"""Compiled artifacts: write, verify and read (numpy only; the loader runs on the board).

An artifact is a directory::

    manifest.json      format version, hardware parameters, layers, memory map, checksums
    mem/*.mem          one $readmemh image per memory bank (hex, one word per line)
    coe/*.coe          the same images as Vivado coefficient files
    network.bin        every bank in one packed stream, for loading at run time
    neuro_params.vh    Verilog header with the synthesis parameters

The manifest is the root of trust: it lists every file with its SHA-256 and size, and
everything else it states follows from its hardware parameters, which its fingerprint covers.
:func:`write_artifact` replaces a folder atomically; :func:`load_artifact` accepts a folder
only when every byte is accounted for. ``docs/artifact-format.md`` specifies every field, bit
layout and check.
"""

from __future__ import annotations

import errno
import json
import math
import os
import posixpath
import re
import secrets
import shutil
import signal
import stat
import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import PynqNeuroError
from ..fileio import fsync_dir, sha256_bytes, write_new_file
from ..golden.network import IntegerNetwork, IntLayer, NetworkError
from ..util import ceil_div
from .limits import HW_LAYER_FIELDS, LIMITS, beats_per_row
from .mapping import Folding, LayerMap, hardware_maps

FORMAT = "pynq-neuro-artifact"
VERSION = 2
BIN_MAGIC = b"PNNB"
BANK_KINDS = {"synapse": 0, "index": 1, "params": 2}
TARGET = "xc7z020clg400-1"
PIXEL_BEAT_BITS = LIMITS.pixel_beat_bits
# Cycle-model constants that the RTL reproduces (pynq_neuro.compiler.cycles).
CONSTANT_NAMES = ("BEATS_PER_ROW", "ROW_BUFFERS", "FRAME_BUFFERS", "FIRST_FRAME_BUFFERS",
                  "FRAME_OVERHEAD",
                  "THRESHOLD_LATENCY", "THRESHOLD_OVERLAP", "RESULT_LATENCY")
# Network-wide parameters built into a core; with the constants and the layers they are what
# the fingerprint covers and what neuro_params.vh defines.
HW_NETWORK_FIELDS = ("format_version", "input_bits", "num_classes", "pixel_beat_bits",
                     "load_bits", "logit_bits")
MANIFEST = "manifest.json"
NETWORK_BIN = "network.bin"
PARAMS_VH = "neuro_params.vh"
INSPECT_DIR = "inspect"        # plots of `pynq-neuro inspect`: never read by the loader
MANIFEST_MAX_BYTES = 16 << 20
# Loader sanity bounds, far above anything the xc7z020 holds (4.9 Mbit of block RAM):
ARTIFACT_MAX_BYTES = 32 << 20  # sum of the sizes of every listed file
DENSE_WEIGHTS_MAX = 1 << 24    # sum over layers of out_channels * taps * in_channels


class ArtifactError(PynqNeuroError, ValueError):
    """An artifact is missing, corrupt, inconsistent, or not for this hardware."""


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ArtifactError(message)


# ------------------------------------------------------------------------------------------------
# memory images and the load stream


def layer_hw(lm: LayerMap) -> dict[str, int]:
    """The hardware parameters of one layer (what the neuron array is built for)."""
    L = lm.layer
    hw = {
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
    return {k: int(v) for k, v in hw.items()}


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
    return max(1, ceil_div(width, 4))


def _chunks(width: int) -> int:
    return ceil_div(width, 32)


def mem_text(bank: Bank) -> str:
    d = hex_digits(bank.width)
    return "".join(f"{w:0{d}x}\n" for w in bank.words)


def _coe_head(name: str, depth: int, width: int) -> str:
    return (f"; pynq-neuro memory image {name} ({depth} x {width} bits)\n"
            "memory_initialization_radix=16;\nmemory_initialization_vector=\n")


def _coe_bytes(name: str, depth: int, width: int, mem: bytes) -> bytes:
    """A .coe image from the text of the same .mem image."""
    body = mem[:-1].replace(b"\n", b",\n") if mem else b"0"
    return _coe_head(name, depth, width).encode() + body + b";\n"


def coe_text(bank: Bank) -> str:
    return _coe_bytes(bank.name, bank.depth, bank.width, mem_text(bank).encode()).decode()


def words32(value: int, width: int) -> list[int]:
    """Little-endian 32-bit chunks of a ``width``-bit word."""
    return [(value >> (32 * i)) & 0xFFFFFFFF for i in range(_chunks(width))]


def pack_binary(banks: list[Bank]) -> bytes:
    """The run-time load stream (see docs/artifact-format.md)."""
    body = bytearray()
    for b in banks:
        chunks = _chunks(b.width)
        body += struct.pack("<HBBIII", b.layer, BANK_KINDS[b.kind], b.bank, b.depth, b.width,
                            b.depth * chunks)
        if not b.words or (min(b.words) >= 0 and max(b.words) >> (32 * chunks) == 0):
            # 32-bit chunks, least significant first: the word's little-endian bytes
            n = 4 * chunks
            body += b"".join(w.to_bytes(n, "little") for w in b.words)
        else:
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
        chunks = _chunks(width) if width else 0
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


# ------------------------------------------------------------------------------------------------
# the hardware description: everything below follows from the manifest's `hardware` section


def core_constants() -> dict[str, int]:
    """The cycle-model constants the RTL is built with."""
    from . import cycles

    return {name: int(getattr(cycles, name)) for name in CONSTANT_NAMES}


def load_bits(layers: list[dict[str, int]]) -> int:
    """Width of the loader's data path: the widest memory word."""
    return max(max(l["word_bits"], l["index_bits"], l["lanes"] * l["param_bits"])
               for l in layers)


def logit_bits(layers: list[dict[str, int]]) -> int:
    return layers[-1]["acc_bits"]


def hardware_section(net: IntegerNetwork, maps: list[LayerMap],
                     packed_pixels: bool = False) -> dict[str, Any]:
    """The ``hardware`` section of a manifest: every parameter built into a core.
    ``packed_pixels``: the pixel stream carries the pixels packed at ``input_bits`` bits
    (:func:`~pynq_neuro.compiler.limits.pixels_per_beat`); the field is written only then,
    so that a byte stream's section and fingerprint are those of artifacts before it."""
    layers = [layer_hw(lm) for lm in maps]
    hw: dict[str, Any] = {
        "target": TARGET,
        "format_version": VERSION,
        "input_bits": int(net.input_bits),
        "num_classes": int(net.num_classes),
        "pixel_beat_bits": PIXEL_BEAT_BITS,
        "load_bits": load_bits(layers),
        "logit_bits": logit_bits(layers),
        "constants": core_constants(),
        "layers": layers,
    }
    if packed_pixels:
        hw["packed_pixels"] = True
    hw["fingerprint"] = hardware_fingerprint(hw)
    return hw


def packed_pixels(hw: dict[str, Any]) -> bool:
    """Whether a hardware section's pixel stream is packed (absent: four bytes a beat)."""
    return bool(hw.get("packed_pixels", False))


def stream_beats_per_row(hw: dict[str, Any]) -> int:
    """s_axis beats of one image row of a hardware section's pixel stream."""
    return beats_per_row(hw["input_bits"], packed_pixels(hw))


def hardware_fingerprint(hw: dict[str, Any]) -> str:
    """Short hash of every parameter built into a core (the network-wide fields, the
    constants and every layer field): equal fingerprints, compatible builds."""
    core = {k: hw[k] for k in HW_NETWORK_FIELDS}
    core["constants"] = hw["constants"]
    core["layers"] = [{k: l[k] for k in HW_LAYER_FIELDS} for l in hw["layers"]]
    if packed_pixels(hw):
        core["packed_pixels"] = True
    return sha256_bytes(json.dumps(core, sort_keys=True).encode())[:16]


def _bank_specs(l: int, h: dict[str, int]) -> list[tuple[str, str, int, int, int]]:
    """``(name, kind, bank, depth, width)`` of the banks of layer ``l``, in load order."""
    G = h["groups"]
    return ([(f"L{l}_syn_g{g}", "synapse", g, h["synapse_depth"], h["word_bits"])
             for g in range(G)] +
            [(f"L{l}_idx_g{g}", "index", g, h["index_depth"], h["index_bits"])
             for g in range(G)] +
            [(f"L{l}_par", "params", 0, h["locals"], h["lanes"] * h["param_bits"])])


def memory_map(layers: list[dict[str, int]]) -> list[dict[str, Any]]:
    """The ``memories`` entries the hardware parameters imply: names, order, shapes, paths
    and offsets in ``network.bin``."""
    out, offset = [], 16
    for l, h in enumerate(layers):
        for name, kind, bank, depth, width in _bank_specs(l, h):
            out.append({"name": name, "layer": l, "kind": kind, "bank": bank, "depth": depth,
                        "width": width, "mem": f"mem/{name}.mem", "coe": f"coe/{name}.coe",
                        "bin_offset": offset})
            offset += 16 + 4 * depth * _chunks(width)
    return out


def _file_sizes(memories: list[dict[str, Any]]) -> dict[str, int]:
    """Exact size of every file but ``neuro_params.vh`` (that one is regenerated whole)."""
    sizes: dict[str, int] = {}
    end = 16
    for m in memories:
        depth, d = m["depth"], hex_digits(m["width"])
        sizes[m["mem"]] = depth * (d + 1)
        body = depth * d + 2 * (depth - 1) if depth else 1
        sizes[m["coe"]] = len(_coe_head(m["name"], depth, m["width"])) + body + 2
        end = m["bin_offset"] + 16 + 4 * depth * _chunks(m["width"])
    sizes[NETWORK_BIN] = end + 4
    return sizes


def verilog_header(manifest: dict[str, Any]) -> str:
    """Synthesis parameters as Verilog macros, one set per layer."""
    hw = manifest["hardware"]
    lines = [
        "// Synthesis parameters of a pynq-neuro network; generated by `pynq-neuro compile`.",
        f"// network: {manifest['network']['name']}",
        "`ifndef PYNQ_NEURO_PARAMS_VH",
        "`define PYNQ_NEURO_PARAMS_VH",
        f"`define PN_FORMAT_VERSION {hw['format_version']}",
        f"`define PN_NUM_LAYERS {len(hw['layers'])}",
        f"`define PN_INPUT_BITS {hw['input_bits']}",
        f"`define PN_NUM_CLASSES {hw['num_classes']}",
        f"`define PN_PIXEL_BEAT_BITS {hw['pixel_beat_bits']}",
    ]
    if packed_pixels(hw):
        # pixels packed at INPUT_BITS bits, PN_PIXELS_PER_BEAT of them a beat (pn_macros.vh)
        lines.append("`define PN_PACKED_PIXELS 1")
    for name, value in hw["constants"].items():
        lines.append(f"`define PN_{name} {value}")
    lines.append(f"`define PN_LOAD_BITS {hw['load_bits']}")
    lines.append(f"`define PN_LOGIT_BITS {hw['logit_bits']}")
    lines.append(f"`define PN_FINGERPRINT 64'h{hw['fingerprint']}")
    for i, layer in enumerate(hw["layers"]):
        for key in HW_LAYER_FIELDS:
            lines.append(f"`define PN_L{i}_{key.upper()} {layer[key]}")
    # the same fields as packed vectors, 32 bits per layer, layer 0 least significant, for
    # generate loops: `PN_V_LANES[32*i +: 32]
    for key in HW_LAYER_FIELDS:
        items = ", ".join(f"32'd{layer[key]}" for layer in reversed(hw["layers"]))
        lines.append(f"`define PN_V_{key.upper()} {{{items}}}")
        if key == "frames_used" and "rows" in manifest["network"]:
            # the image rows the network reads; layer 0 must handle at least these
            lines.append(f"`define PN_INPUT_ROWS {manifest['network']['rows']}")
    lines.append("`endif")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# manifest schema: exact JSON types, then values and relations

_TYPE_NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object",
               bool: "a boolean"}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX16 = re.compile(r"[0-9a-f]{16}")
TOP_FIELDS = {"format": str, "version": int, "created_by": str, "network": dict,
              "hardware": dict, "memories": list, "files": dict, "sizes": dict}
NETWORK_FIELDS = {"name": str, "input_bits": int, "num_classes": int, "synapses": int,
                  "meta": dict}
# The image rows the network reads (optional: manifests written before it have none; the
# layers' taps and strides then say it).
NETWORK_OPTIONAL = {"rows": int}
HARDWARE_FIELDS = {"target": str, **{k: int for k in HW_NETWORK_FIELDS}, "constants": dict,
                   "layers": list, "fingerprint": str}
# The packed pixel stream (optional: absent, the stream carries four bytes a beat).
HARDWARE_OPTIONAL = {"packed_pixels": bool}
MEMORY_FIELDS = {"name": str, "layer": int, "kind": str, "bank": int, "depth": int,
                 "width": int, "mem": str, "coe": str, "bin_offset": int}
# The images a compile ran on (optional: manifests written before it have none).
DATASET_FIELDS = {"name": str, "sample_images": int, "sample_sha256": str}
DATASET_OPTIONAL = {"sha256": str, "source": str}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"
    if isinstance(value, float):
        return f"a number with a fraction or exponent ({value!r})"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _typed(value: Any, kind: type, where: str) -> None:
    # `type(...) is` and not isinstance: a JSON true is no integer here
    if type(value) is not kind:
        raise ArtifactError(f"manifest.json: {where} must be {_TYPE_NAMES[kind]}, got "
                            f"{_json_type(value)}")


def _fields(obj: Any, spec: dict[str, type], where: str, exact: bool = True) -> None:
    _typed(obj, dict, where)
    missing = [k for k in spec if k not in obj]
    _require(not missing, f"manifest.json: {where} lacks {', '.join(missing)}")
    if exact:
        extra = sorted(k for k in obj if k not in spec)
        _require(not extra, f"manifest.json: {where} has unknown fields {', '.join(extra)}")
    for k, kind in spec.items():
        _typed(obj[k], kind, f"{where}.{k}" if where != "manifest" else k)


def _relative_path(p: str, where: str) -> None:
    ok = (p and "\\" not in p and "\0" not in p and not p.startswith("/")
          and posixpath.normpath(p) == p
          and all(part not in ("", ".", "..") for part in p.split("/")))
    _require(bool(ok), f"manifest.json: {where} {p!r} is not a normalised relative path "
                       f"inside the artifact")


def _check_schema(m: Any) -> None:
    """Exact types and key sets of every field the loader reads."""
    _typed(m, dict, "the manifest")
    _require(m.get("format") == FORMAT and type(m.get("format")) is str,
             f"not a {FORMAT} (manifest.json has format {m.get('format')!r})")
    if "version" not in m:
        raise ArtifactError("manifest.json lacks version")
    _typed(m["version"], int, "version")
    _require(m["version"] == VERSION, f"artifact version {m['version']} is not supported "
                                      f"(this pynq-neuro reads version {VERSION})")
    _fields(m, TOP_FIELDS, "manifest", exact=False)
    for key in ("performance", "compile_config"):
        if key in m:
            _typed(m[key], dict, key)
    _fields(m["network"], NETWORK_FIELDS, "network", exact=False)
    extra = sorted(k for k in m["network"] if k not in NETWORK_FIELDS and k not in
                   NETWORK_OPTIONAL)
    _require(not extra, f"manifest.json: network has unknown fields {', '.join(extra)}")
    for k, kind in NETWORK_OPTIONAL.items():
        if k in m["network"]:
            _typed(m["network"][k], kind, f"network.{k}")
    hw = m["hardware"]
    _fields(hw, HARDWARE_FIELDS, "hardware", exact=False)
    extra = sorted(k for k in hw if k not in HARDWARE_FIELDS and k not in HARDWARE_OPTIONAL)
    _require(not extra, f"manifest.json: hardware has unknown fields {', '.join(extra)}")
    for k, kind in HARDWARE_OPTIONAL.items():
        if k in hw:
            _typed(hw[k], kind, f"hardware.{k}")
    _require(bool(_HEX16.fullmatch(hw["fingerprint"])),
             "manifest.json: hardware.fingerprint must be 16 lowercase hex digits")
    _fields(hw["constants"], dict.fromkeys(CONSTANT_NAMES, int), "hardware.constants")
    _require(list(hw["constants"]) == list(CONSTANT_NAMES), "manifest.json: "
             f"hardware.constants must be in the order {', '.join(CONSTANT_NAMES)}")
    _require(len(hw["layers"]) > 0, "manifest.json: hardware.layers is empty")
    for i, layer in enumerate(hw["layers"]):
        _fields(layer, dict.fromkeys(HW_LAYER_FIELDS, int), f"hardware.layers[{i}]")
    for i, entry in enumerate(m["memories"]):
        _fields(entry, MEMORY_FIELDS, f"memories[{i}]")
    for key in ("files", "sizes"):
        for name, value in m[key].items():
            _relative_path(name, f"{key} key")
            _typed(value, str if key == "files" else int, f"{key}[{name!r}]")
    for name, digest in m["files"].items():
        _require(bool(_HEX64.fullmatch(digest)),
                 f"manifest.json: files[{name!r}] is not a SHA-256 (64 lowercase hex digits)")
    if "dataset" in m:
        _check_dataset(m["dataset"])
    if "dataset" in m["network"].get("meta", {}):
        from ..data import DataError, check_record

        try:
            check_record(m["network"]["meta"]["dataset"], "manifest.json: network.meta.dataset")
        except DataError as e:
            raise ArtifactError(str(e)) from None


def _check_dataset(d: Any) -> None:
    """The ``dataset`` section: exact types, digests of 64 lowercase hex digits."""
    _typed(d, dict, "dataset")
    missing = [k for k in DATASET_FIELDS if k not in d]
    _require(not missing, f"manifest.json: dataset lacks {', '.join(missing)}")
    extra = sorted(k for k in d if k not in DATASET_FIELDS and k not in DATASET_OPTIONAL)
    _require(not extra, f"manifest.json: dataset has unknown fields {', '.join(extra)}")
    for k, kind in {**DATASET_FIELDS, **DATASET_OPTIONAL}.items():
        if k in d:
            _typed(d[k], kind, f"dataset.{k}")
    _require(d["sample_images"] >= 1, "manifest.json: dataset.sample_images must be >= 1")
    for k in ("sha256", "sample_sha256"):
        if k in d:
            _require(bool(_HEX64.fullmatch(d[k])), f"manifest.json: dataset.{k} is not a "
                                                  f"SHA-256 (64 lowercase hex digits)")


def dataset_record(manifest: dict[str, Any]) -> dict[str, str] | None:
    """The dataset an artifact's network was made with (a record as in
    :func:`pynq_neuro.data.check_record`): the network's own record, else the dataset the
    compiler ran on, else ``None`` (an artifact from before datasets were recorded)."""
    meta = manifest["network"].get("meta", {})
    if isinstance(meta.get("dataset"), dict):
        return dict(meta["dataset"])
    d = manifest.get("dataset")
    if isinstance(d, dict) and "sha256" in d:
        return {k: d[k] for k in ("name", "sha256", "source") if k in d}
    return None


def check_manifest(m: Any) -> None:
    """Refuse a manifest unless its types are exact, its fingerprint matches, the core can
    hold it, its layer fields are consistent and its memory map, file list and sizes are the
    ones its hardware parameters imply (``neuro_params.vh`` is checked against its file)."""
    from .limits import violations

    _check_schema(m)
    net, hw = m["network"], m["hardware"]
    _require(hardware_fingerprint(hw) == hw["fingerprint"],
             "hardware parameters do not match their fingerprint")
    for key, want in (("format_version", VERSION), ("input_bits", net["input_bits"]),
                      ("num_classes", net["num_classes"]), ("pixel_beat_bits", PIXEL_BEAT_BITS)):
        _require(hw[key] == want, f"manifest.json: hardware.{key} is {hw[key]}, expected {want}")
    layers = hw["layers"]
    # the core's limits and every relation between a layer's fields (limits.py)
    found = violations(layers, hw["input_bits"], hw["num_classes"], rows=net.get("rows"))
    _require(not found, "the core cannot hold this artifact: " + "; ".join(map(str, found)))
    for name, value in core_constants().items():
        _require(hw["constants"][name] == value, f"manifest.json: hardware.constants.{name} is "
                                                 f"{hw['constants'][name]}, the core of this "
                                                 f"pynq-neuro has {value}")
    for key, want in (("load_bits", load_bits(layers)), ("logit_bits", logit_bits(layers))):
        _require(hw[key] == want, f"manifest.json: hardware.{key} is {hw[key]}, the layers "
                                  f"give {want}")
    dense = sum(h["out_channels"] * h["taps"] * h["in_channels"] for h in layers)
    _require(dense <= DENSE_WEIGHTS_MAX, f"the layers describe {dense} weight slots, more than "
                                         f"the loader accepts ({DENSE_WEIGHTS_MAX})")
    want_mem = memory_map(layers)
    got_mem = m["memories"]
    _require(len(got_mem) == len(want_mem),
             f"manifest.json: {len(got_mem)} memories listed, the hardware parameters give "
             f"{len(want_mem)} (in the manifest's canonical bank order)")
    for i, (got, want) in enumerate(zip(got_mem, want_mem)):
        for key in MEMORY_FIELDS:
            unit = " words" if key == "depth" else " bits" if key == "width" else ""
            _require(got[key] == want[key],
                     f"manifest.json: memories[{i}].{key} is {got[key]!r}{unit}, the hardware "
                     f"parameters give {want[key]!r}{unit} (bank {want['name']})")
    sizes = _file_sizes(want_mem)
    sizes[PARAMS_VH] = len(verilog_header(m).encode())
    total = sum(sizes.values())
    _require(total <= ARTIFACT_MAX_BYTES, f"the manifest describes {total} bytes of files, "
                                          f"more than the loader accepts ({ARTIFACT_MAX_BYTES})")
    for key in ("files", "sizes"):
        unlisted = sorted(set(sizes) - set(m[key]))
        unknown = sorted(set(m[key]) - set(sizes))
        _require(not unlisted, f"manifest.json: {key} lacks {', '.join(unlisted[:3])}")
        _require(not unknown, f"manifest.json: {key} lists {', '.join(unknown[:3])}, which is "
                              f"no file of this artifact")
    for name, size in sizes.items():
        _require(m["sizes"][name] == size, f"manifest.json: sizes[{name!r}] is "
                                           f"{m['sizes'][name]}, the hardware parameters give "
                                           f"{size} bytes")


# ------------------------------------------------------------------------------------------------
# writing


def _nonfinite(obj: Any, where: str = "") -> str | None:
    """Path of the first NaN or infinity in a JSON-like object."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where or "(top)"
    if isinstance(obj, dict):
        items = obj.items()
    elif isinstance(obj, (list, tuple)):
        items = enumerate(obj)
    else:
        return None
    for k, v in items:
        found = _nonfinite(v, f"{where}.{k}" if isinstance(k, str) else f"{where}[{k}]")
        if found:
            return found.lstrip(".")
    return None


def _manifest_bytes(manifest: dict[str, Any], out: Path) -> bytes:
    bad = _nonfinite(manifest)
    if bad is not None:
        raise ArtifactError(f"cannot write {out}: manifest value {bad} is not finite "
                            f"(JSON has no NaN or infinity)")
    try:
        return (json.dumps(manifest, indent=2, allow_nan=False) + "\n").encode()
    except (TypeError, ValueError) as e:
        raise ArtifactError(f"cannot write {out}: the manifest is not JSON ({e})") from None


def render_artifact(net: IntegerNetwork, maps: list[LayerMap],
                    extra: dict[str, Any] | None = None, *, packed_pixels: bool = False
                    ) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and every file of an artifact (relative path -> bytes), in memory
    (``packed_pixels``: see :func:`hardware_section`)."""
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(TOP_FIELDS))
    if clash:
        raise ArtifactError(f"extra manifest fields {', '.join(clash)} would replace the "
                            f"artifact's own")
    banks = banks_of(maps)
    hw = hardware_section(net, maps, packed_pixels)
    memories = memory_map(hw["layers"])
    if [(b.name, b.depth, b.width) for b in banks] != \
            [(e["name"], e["depth"], e["width"]) for e in memories]:
        raise ArtifactError("internal error: the memory images do not match the memory map")
    files: dict[str, bytes] = {NETWORK_BIN: pack_binary(banks)}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "created_by": f"pynq-neuro {__version__}",
        "network": {
            "name": str(net.meta.get("name", "network")),
            "input_bits": int(net.input_bits),
            "num_classes": int(net.num_classes),
            "rows": int(net.input_rows),
            "synapses": int(net.synapses),
            "meta": net.meta,
        },
        "hardware": hw,
        "memories": memories,
        **extra,
    }
    files[PARAMS_VH] = verilog_header(manifest).encode()
    for b, e in zip(banks, memories):
        files[e["mem"]] = mem_text(b).encode()
    for b, e in zip(banks, memories):
        files[e["coe"]] = coe_text(b).encode()
    manifest["files"] = {name: sha256_bytes(data) for name, data in files.items()}
    manifest["sizes"] = {name: len(data) for name, data in files.items()}
    check_manifest(manifest)
    return manifest, files


def _sibling(out: Path, kind: str) -> Path:
    return out.parent / f".{out.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}"


_SIBLING = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[0-9a-f]+")
_ACTIVE: set[str] = set()      # temporary folders this process is writing right now


def _leftovers(out: Path) -> list[tuple[Path, str, int]]:
    """Temporary (``tmp``) and replaced (``old``) folders of earlier writes of ``out``."""
    found = []
    try:
        names = os.listdir(out.parent)
    except OSError:
        return []
    for name in names:
        m = _SIBLING.fullmatch(name)
        if m and m["name"] == out.name:
            found.append((out.parent / name, m["kind"], int(m["pid"])))
    return found


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _clean_leftovers(out: Path) -> None:
    """Remove what an interrupted write left beside ``out``; when the interruption came
    between moving the old artifact aside and moving the new one in, put the old one back."""
    stale = [(p, kind) for p, kind, pid in _leftovers(out)
             if str(p) not in _ACTIVE and (pid == os.getpid() or not _alive(pid))]
    olds = sorted((p for p, kind in stale if kind == "old"), key=lambda p: p.stat().st_mtime)
    if olds and not os.path.lexists(out):
        os.rename(olds.pop(), out)
    for p, _ in stale:
        if p.exists() and p != out:
            shutil.rmtree(p, ignore_errors=True)


def _holds_artifact(out: Path) -> bool:
    """Whether ``out`` has a manifest of this format (any version): a folder the compiler
    may replace."""
    try:
        with _Reader(out) as r:
            manifest = _parse_json(r.read(MANIFEST, max_size=MANIFEST_MAX_BYTES))
    except (ArtifactError, OSError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def _check_output(out: Path, force: bool) -> None:
    if not out.name or out.parent == out:
        raise ArtifactError(f"{out} cannot be an artifact folder")
    if not os.path.lexists(out):
        return
    if not out.is_dir():
        raise ArtifactError(f"{out} is a file, not a folder: choose another output folder")
    if force or not any(out.iterdir()) or _holds_artifact(out):
        return
    raise ArtifactError(f"{out} is not empty and holds no pynq-neuro artifact; refusing to "
                        f"replace it (use --force to overwrite it)")


def check_output(directory: str | Path, force: bool = False) -> None:
    """Refuse early an output that :func:`write_artifact` would refuse: a file, a folder below
    a file, or a non-empty folder that holds no artifact (unless ``force``)."""
    out = Path(os.path.realpath(os.path.abspath(directory)))
    for parent in out.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise ArtifactError(f"cannot write {out}: {parent} is a file, not a folder")
            break
    _check_output(out, force)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for a few system calls; deliver them afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    saved = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not None:  # None: a handler not installed from Python
            saved[sig] = signal.signal(sig, lambda s, _f: received.append(s))
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(received):
            signal.raise_signal(sig)


def write_artifact(directory: str | Path, net: IntegerNetwork, maps: list[LayerMap],
                   extra: dict[str, Any] | None = None, *, force: bool = False,
                   packed_pixels: bool = False) -> dict[str, Any]:
    """Write an artifact directory atomically and return its manifest.

    Everything is written into a temporary sibling folder and synced, then swapped in: an
    interruption at any instant leaves either the previous artifact or the new one whole.
    An existing artifact is replaced (none of its files survive); any other non-empty folder
    only with ``force``.
    """
    out = Path(os.path.realpath(os.path.abspath(directory)))
    manifest, files = render_artifact(net, maps, extra, packed_pixels=packed_pixels)
    manifest_bytes = _manifest_bytes(manifest, out)
    tmp: Path | None = None
    old: Path | None = None
    swapped = False
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _clean_leftovers(out)
        _check_output(out, force)
        while tmp is None:
            candidate = _sibling(out, "tmp")
            _ACTIVE.add(str(candidate))
            try:
                os.mkdir(candidate)
                tmp = candidate
            except FileExistsError:
                _ACTIVE.discard(str(candidate))
        os.mkdir(tmp / "mem")
        os.mkdir(tmp / "coe")
        for name, data in files.items():
            write_new_file(tmp / name, data)
        write_new_file(tmp / MANIFEST, manifest_bytes)
        for d in (tmp / "mem", tmp / "coe", tmp):
            fsync_dir(d)
        with _signals_deferred():
            if os.path.lexists(out):
                old = _sibling(out, "old")
                os.rename(out, old)
                try:
                    os.rename(tmp, out)
                except BaseException:
                    os.rename(old, out)
                    old = None
                    raise
            else:
                os.rename(tmp, out)
            swapped = True
            fsync_dir(out.parent)
    except BaseException as e:
        if tmp is not None and not swapped:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            raise ArtifactError(f"cannot write {out}: {_reason(e)}") from None
        raise
    finally:
        if tmp is not None:
            _ACTIVE.discard(str(tmp))
        if swapped and old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return manifest


# ------------------------------------------------------------------------------------------------
# reading: confined paths, regular files only, sizes before reading


def _reason(e: OSError) -> str:
    reasons = {errno.ENOENT: "no such file or folder", errno.EACCES: "permission denied",
               errno.EPERM: "operation not permitted",
               errno.ELOOP: "a symbolic link (an artifact holds regular files only)",
               errno.ENOTDIR: "not a folder", errno.EISDIR: "a folder where a file belongs",
               errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system",
               errno.EMLINK: "a symbolic link (an artifact holds regular files only)"}
    return reasons.get(e.errno, e.strerror or str(e))


class _Reader:
    """Reads files below one folder: no symbolic links, regular files only, sizes checked
    before reading (a FIFO or a device is refused, never opened for blocking reads)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    def __enter__(self) -> "_Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def _open(self, rel: str, directory: bool = False) -> int:
        try:
            return self._open_path(rel, directory)
        except OSError as e:
            if e.errno == errno.ENOENT:
                raise ArtifactError(f"{self.root}: missing file {rel}") from None
            raise ArtifactError(f"{self.root}/{rel}: {_reason(e)}") from None

    def _open_path(self, rel: str, directory: bool) -> int:
        nofollow = getattr(os, "O_NOFOLLOW", 0)
        parts = rel.split("/")
        fds: list[int] = []
        try:
            dfd = self.fd
            for i, part in enumerate(parts):
                leaf = i == len(parts) - 1
                flags = os.O_RDONLY | nofollow
                flags |= os.O_NONBLOCK if leaf and not directory else os.O_DIRECTORY
                fd = os.open(part, flags, dir_fd=dfd)
                fds.append(fd)
                dfd = fd
            return fds.pop()
        finally:
            for fd in fds:
                os.close(fd)

    def entries(self, rel: str = "") -> dict[str, os.DirEntry]:
        fd = self._open(rel, directory=True) if rel else os.dup(self.fd)
        try:
            with os.scandir(fd) as it:
                return {e.name: e for e in it}
        finally:
            os.close(fd)

    def read(self, rel: str, size: int | None = None, max_size: int | None = None) -> bytes:
        fd = self._open(rel)
        try:
            st = os.fstat(fd)
            where = f"{self.root}/{rel}"
            _require(not stat.S_ISDIR(st.st_mode), f"{where}: a folder where a file belongs")
            _require(stat.S_ISREG(st.st_mode), f"{where}: not a regular file")
            if size is not None:
                _require(st.st_size == size, f"{where}: {st.st_size} bytes, the manifest says "
                                             f"{size}")
            if max_size is not None:
                _require(st.st_size <= max_size, f"{where}: {st.st_size} bytes, more than "
                                                 f"{max_size}")
            want = st.st_size
            parts, got = [], 0
            while got < want:
                chunk = os.read(fd, min(want - got, 1 << 20))
                if not chunk:
                    break
                parts.append(chunk)
                got += len(chunk)
            _require(got == want and not os.read(fd, 1),
                     f"{where}: changed size while being read")
            return b"".join(parts)
        finally:
            os.close(fd)


def _refuse_constant(name: str) -> Any:
    raise ArtifactError(f"manifest.json: {name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        _require(k not in out, f"manifest.json: key {k!r} appears twice in one object")
        out[k] = v
    return out


def _finite(text: str) -> float:
    value = float(text)
    _require(math.isfinite(value), f"manifest.json: the number {text[:20]} is out of range")
    return value


def _parse_json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant,
                          parse_float=_finite, object_pairs_hook=_unique_keys)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as e:
        if isinstance(e, ArtifactError):
            raise
        raise ArtifactError(f"manifest.json: not valid JSON ({str(e)[:120]})") from None


def _parse_mem(data: bytes, width: int, depth: int, name: str) -> list[int]:
    """Words of a .mem image in the canonical form (``depth`` lines of lowercase hex)."""
    d = hex_digits(width)
    lines = data.split(b"\n")
    _require(data.endswith(b"\n") and len(lines) == depth + 1,
             f"{name}: {len(lines) - 1} words, the manifest says {depth}")
    _require(not data.translate(None, b"0123456789abcdef\n") and
             data[d::d + 1] == b"\n" * depth,
             f"{name}: not {depth} lines of {d} lowercase hexadecimal digits")
    words = [int(line, 16) for line in lines[:-1]]
    n = next((n for n, w in enumerate(words) if w >> width), None)
    _require(n is None, f"{name}: line {(n or 0) + 1} is wider than {width} bits")
    return words


def _bin_mismatch(blob: bytes, banks: list[Bank], memories: list[dict[str, Any]]) -> str:
    """Why ``network.bin`` is not the packed form of the memory images."""
    try:
        streamed = unpack_binary(blob)
    except ArtifactError as e:
        return str(e)
    if len(streamed) != len(banks):
        return f"network.bin: {len(streamed)} banks, the memory images {len(banks)}"
    for s, b, m in zip(streamed, banks, memories):
        if (s.layer, s.kind, s.bank, s.depth, s.width) != (b.layer, b.kind, b.bank, b.depth,
                                                          b.width):
            return f"network.bin: the header of bank {m['name']} differs from the manifest"
        for j, (x, y) in enumerate(zip(s.words, b.words)):
            if x != y:
                return (f"network.bin: bank {m['name']} word {j} is {x:#x}, {m['mem']} has "
                        f"{y:#x}")
    return "network.bin: not the packed form of the memory images"


def _missing_hint(path: Path) -> str:
    olds = [p.name for p, kind, _ in _leftovers(path) if kind == "old"]
    if olds:
        return (f" (an interrupted write left the previous artifact in {olds[0]} beside it: "
                f"rename it to {path.name}, or compile again)")
    return ""


def hardware_differences(mine: dict[str, Any], hw: dict[str, Any], where: str = "network"
                         ) -> list[tuple[str, str, Any, Any]]:
    """``(where, field, value of mine, value of hw)`` for every parameter of the hardware
    section ``mine`` that differs from ``hw``: another manifest's ``hardware`` section, or the
    parameters read back from a core (fields it does not report are not compared).
    Network-wide fields are reported with ``where``, layer fields with ``"layer i"``."""
    diffs: list[tuple[str, str, Any, Any]] = []
    if "fingerprint" in hw and hw["fingerprint"] != mine["fingerprint"]:
        diffs.append((where, "fingerprint", mine["fingerprint"], hw["fingerprint"]))
    for key in HW_NETWORK_FIELDS:
        if key in hw and hw[key] != mine[key]:
            diffs.append((where, key, mine[key], hw[key]))
    if "packed_pixels" in hw or isinstance(hw.get("constants"), dict):
        if packed_pixels(hw) != packed_pixels(mine):
            diffs.append((where, "packed_pixels", packed_pixels(mine), packed_pixels(hw)))
    if isinstance(hw.get("constants"), dict):
        diffs += [(where, k, v, hw["constants"].get(k))
                  for k, v in mine["constants"].items() if hw["constants"].get(k) != v]
    other = hw.get("layers", [])
    if len(other) != len(mine["layers"]):
        diffs.append((where, "num_layers", len(mine["layers"]), len(other)))
    for i, (a, b) in enumerate(zip(mine["layers"], other)):
        diffs += [(f"layer {i}", k, a[k], b.get(k)) for k in HW_LAYER_FIELDS
                  if a[k] != b.get(k)]
    return diffs


@dataclass
class Artifact:
    """A verified artifact: its manifest, banks, the network they encode and the verified
    bytes of its load stream (``network.bin``)."""

    path: Path
    manifest: dict[str, Any]
    banks: list[Bank]
    network: IntegerNetwork
    binary: bytes = b""

    @property
    def fingerprint(self) -> str:
        return self.manifest["hardware"]["fingerprint"]

    @property
    def packed_pixels(self) -> bool:
        """The pixel stream carries the pixels packed at ``input_bits`` bits."""
        return packed_pixels(self.manifest["hardware"])

    @property
    def beats_per_row(self) -> int:
        """s_axis beats of one image row (7 for four bytes a beat)."""
        return stream_beats_per_row(self.manifest["hardware"])

    def cycle_maps(self) -> list[LayerMap]:
        """The layer maps of the network on this artifact's hardware, for the cycle model
        (:func:`~pynq_neuro.compiler.cycles.simulate` with :attr:`beats_per_row`)."""
        return hardware_maps(self.network, self.manifest["hardware"]["layers"])

    def hardware_differences(self, hw: dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
        """:func:`hardware_differences` of this artifact's hardware and ``hw``."""
        return hardware_differences(self.manifest["hardware"], hw)

    def check_hardware(self, hw: dict[str, Any]) -> None:
        """Refuse unless the artifact was compiled for hardware ``hw`` (a manifest's
        ``hardware`` section or the parameters read back from a core); the message lists
        every differing field."""
        diffs = self.hardware_differences(hw)
        if diffs:
            listing = "; ".join(f"{where}: {k} artifact {a} != hardware {b}"
                                for where, k, a, b in diffs)
            raise ArtifactError(f"artifact {self.path} was compiled for other hardware "
                                f"({len(diffs)} differences: {listing}); compile it for this "
                                f"hardware")


def load_artifact(directory: str | Path, source: str = "mem") -> Artifact:
    """Read and verify an artifact. Every listed file is checked (size, SHA-256, canonical
    content); the memory images, ``network.bin`` and ``neuro_params.vh`` must describe the
    same network. ``source`` picks the banks returned, ``"mem"`` (the .mem images) or
    ``"bin"`` (the load stream); both are verified and equal."""
    if source not in ("mem", "bin"):
        raise ValueError(f"source must be 'mem' or 'bin', got {source!r}")
    path = Path(directory)
    try:
        if not os.path.lexists(path) or (path.is_symlink() and not path.exists()):
            raise ArtifactError(f"{path}: no such artifact folder{_missing_hint(path)}")
        if not path.is_dir():
            kind = "a file" if path.is_file() else "not a folder"
            raise ArtifactError(f"{path} is {kind}: an artifact is a folder")
        with _Reader(path) as reader:
            return _load(reader, path, source)
    except OSError as e:
        where = f"{path}/{Path(e.filename).name}" if e.filename else str(path)
        raise ArtifactError(f"{where}: {_reason(e)}") from None


def _listing(reader: _Reader, path: Path, manifest: dict[str, Any]) -> bool:
    """Refuse unlisted or missing entries; returns whether the coe/ images are present (the
    whole folder may be left out: a board needs none of them)."""
    listed = set(manifest["files"]) | {MANIFEST}
    tree: dict[str, set[str]] = {"": set()}
    for name in listed:
        folder, _, leaf = name.rpartition("/")
        tree.setdefault(folder, set()).add(leaf)
        if folder:
            tree[""].add(folder)
    top = reader.entries()
    has_coe = "coe" in top
    if not has_coe:
        tree[""].discard("coe")
    for folder, want in tree.items():
        if folder == "coe" and not has_coe:
            continue
        got = top if not folder else reader.entries(folder)
        for name, entry in got.items():
            rel = f"{folder}/{name}" if folder else name
            if not folder and name == INSPECT_DIR:
                continue
            _require(name in want, f"{path}/{rel}: not listed in the manifest (remove it or "
                                   f"compile again)")
            _require(not entry.is_symlink(),
                     f"{path}/{rel}: a symbolic link (an artifact holds regular files only)")
            is_dir = entry.is_dir(follow_symlinks=False)
            _require(is_dir == (rel in tree), f"{path}/{rel}: a "
                     f"{'folder' if is_dir else 'file'} where a "
                     f"{'folder' if rel in tree else 'file'} belongs")
        missing = sorted(want - set(got))
        if missing:
            rel = f"{folder}/{missing[0]}" if folder else missing[0]
            raise ArtifactError(f"{path}: missing file {rel}")
    return has_coe


def _load(reader: _Reader, path: Path, source: str) -> Artifact:
    _require(MANIFEST in reader.entries(), f"{path}: no manifest.json (not an artifact "
                                           f"directory)")
    manifest = _parse_json(reader.read(MANIFEST, max_size=MANIFEST_MAX_BYTES))
    try:
        check_manifest(manifest)
    except ArtifactError as e:
        raise ArtifactError(f"{path}: {e}") from None
    has_coe = _listing(reader, path, manifest)
    files, sizes, memories = manifest["files"], manifest["sizes"], manifest["memories"]

    def read(rel: str) -> bytes:
        data = reader.read(rel, size=sizes[rel])
        _require(sha256_bytes(data) == files[rel], f"{path}/{rel}: SHA-256 mismatch")
        return data

    _require(read(PARAMS_VH) == verilog_header(manifest).encode(),
             f"{path}/{PARAMS_VH}: differs from the parameters in the manifest")
    banks, mem_bytes = [], []
    for m in memories:
        mem_bytes.append(read(m["mem"]))
        words = _parse_mem(mem_bytes[-1], m["width"], m["depth"], f"{path}/{m['mem']}")
        banks.append(Bank(m["name"], m["layer"], m["kind"], m["bank"], m["width"], words))
    blob = read(NETWORK_BIN)
    if blob != pack_binary(banks):
        raise ArtifactError(f"{path}/{_bin_mismatch(blob, banks, memories)}")
    if has_coe:
        for b, m, mem in zip(banks, memories, mem_bytes):
            _require(read(m["coe"]) == _coe_bytes(b.name, b.depth, b.width, mem),
                     f"{path}/{m['coe']}: differs from {m['mem']}")
    if source == "bin":
        streamed = unpack_binary(blob)
        for b, m in zip(streamed, memories):
            b.name = m["name"]
        banks = streamed
    try:
        net = network_from_banks(manifest, banks)
        _check_mapping(manifest, net, banks)
    except (NetworkError, ValueError, IndexError, ZeroDivisionError, OverflowError) as e:
        if isinstance(e, ArtifactError):
            raise ArtifactError(f"{path}: {e}") from None
        raise ArtifactError(f"{path}: memory images do not form a valid network: {e}") from None
    return Artifact(path, manifest, banks, net, blob)


def _check_mapping(manifest: dict[str, Any], net: IntegerNetwork, banks: list[Bank]) -> None:
    """The hardware parameters and index tables are the ones the decoded network maps to:
    frames, word counts and accumulator widths are recomputed (the latter may be wider, for
    a network mapped onto a larger build), columns are packed in order, unused words are 0."""
    from .mapping import map_layer

    _require(manifest["network"]["synapses"] == net.synapses,
             f"manifest.json: network.synapses is {manifest['network']['synapses']}, the "
             f"memory images hold {net.synapses}")
    by_key = {(b.layer, b.kind, b.bank): b for b in banks}
    for i, h in enumerate(manifest["hardware"]["layers"]):
        lm = map_layer(net, i, Folding(h["groups"], h["lanes"]), pack=False,
                       acc_bits=h["acc_bits"], depth=h["synapse_depth"],
                       count_bits=h["count_bits"])
        want = layer_hw(lm)
        diff = [k for k in HW_LAYER_FIELDS if want[k] != h[k]]
        _require(not diff, f"layer {i}: {', '.join(diff)} differ from what the memory images "
                           f"map to")
        for g in range(h["groups"]):
            _require(by_key[(i, "index", g)].words == lm.index_words(g),
                     f"layer {i}: index table of group {g} is not in the canonical layout")
            used = int(lm.words[g].sum())
            _require(not any(by_key[(i, "synapse", g)].words[used:]),
                     f"layer {i}: unused synapse words of group {g} are not 0")


def network_from_banks(manifest: dict[str, Any], banks: list[Bank]) -> IntegerNetwork:
    """Rebuild the integer network from memory images and the manifest's layer parameters
    (a manifest that :func:`check_manifest` accepted: its layer fields are consistent)."""
    from .mapping import unpack_layer

    hw_layers = manifest["hardware"]["layers"]
    by_key = {(b.layer, b.kind, b.bank): b for b in banks}
    layers: list[IntLayer] = []
    for i, h in enumerate(hw_layers):
        last = i == len(hw_layers) - 1
        G, P = h["groups"], h["lanes"]
        try:
            syn = [by_key[(i, "synapse", g)] for g in range(G)]
            idx = [by_key[(i, "index", g)] for g in range(G)]
            par = by_key[(i, "params", 0)]
        except KeyError as e:
            raise ArtifactError(f"layer {i}: no memory bank {e.args[0]}") from None
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
        table = np.array([b.words for b in idx], np.int64).reshape(G, K, -1)
        base, words = table[:, :, :cl] & amask, table[:, :, :cl] >> h["addr_bits"]
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
                         manifest["network"]["num_classes"], manifest["network"].get("meta", {}),
                         manifest["network"].get("rows"))
    net.validate()
    return net
