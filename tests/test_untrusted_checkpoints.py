"""The checkpoint boundary: the torch archive is inspected before torch.load (compressed, oversized, overlapping
records; TorchScript archives and pickles), legacy files are bounded, odd tensors are refused after loading, and
safetensors headers are checked; bombs and the TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD override run in a capped child.
Every file is generated here."""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile

import pytest
import torch
from helpers import TinyCNN, assert_clean_error, seeded
from hostile import Entry, MiB, Payload, raw_zip, run_capped, torch_bomb, torch_bytes
from safetensors.torch import save as save_safetensors

from xai_core import ModelLoadError, load_checkpoint
from xai_core.untrusted import Limits, read_state_dict

SMALL = {"w": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.ones(3)}


def _refused(data: bytes, fragment: str, filename: str = "w.pth", **kw) -> str:
    with pytest.raises(ModelLoadError) as info:
        read_state_dict(data, filename, **kw)
    msg = assert_clean_error(info.value)
    assert fragment in msg and "weights_only=False" not in msg, msg
    return msg


def _rewrite(data: bytes, change) -> bytes:
    """The same archive written again by zipfile, with change(name, bytes) -> (bytes, compress_type) per record."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body, method = change(info.filename, src.read(info))
            dst.writestr(info.filename, body, compress_type=method)
    return out.getvalue()


def _entries(data: bytes) -> list[Entry]:
    src = zipfile.ZipFile(io.BytesIO(data))
    return [Entry(i.filename, src.read(i)) for i in src.infolist()]


def test_a_plain_state_dict_reads_and_a_rewritten_stored_archive_still_reads():
    state = read_state_dict(torch_bytes(SMALL), "w.pth")
    assert torch.equal(state["w"], SMALL["w"])
    again = read_state_dict(raw_zip(_entries(torch_bytes(SMALL))), "w.pth")  # no alignment padding: still fine
    assert torch.equal(again["b"], SMALL["b"])


def test_a_compressed_record_is_refused_before_torch_load(monkeypatch):
    data = _rewrite(torch_bytes(SMALL), lambda n, b: (b, zipfile.ZIP_DEFLATED if "/data/" in n else zipfile.ZIP_STORED))
    assert torch.equal(torch.load(io.BytesIO(data), weights_only=True)["w"], SMALL["w"])  # torch itself would inflate it

    def no_load(*_a, **_k):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", no_load)
    _refused(data, "is compressed, which torch.save never does")


def test_a_record_larger_than_the_file_and_overlapping_records_are_refused():
    entries = _entries(torch_bytes(SMALL))
    data_i = next(i for i, e in enumerate(entries) if "/data/0" in str(e.name))
    big = [*entries[:data_i], Entry(entries[data_i].name, entries[data_i].data, size=10**9, csize=10**9),
           *entries[data_i + 1:]]
    _refused(raw_zip(big), "declares 1,000,000,000 bytes, more than the file holds")
    lying = [*entries[:data_i], Entry(entries[data_i].name, entries[data_i].data, size=10**6), *entries[data_i + 1:]]
    _refused(raw_zip(lying), "more than the file holds")  # stored, yet its two sizes disagree
    overlap = [*entries, Entry("archive/data/99", entries[data_i].data, same_as=data_i)]
    _refused(raw_zip(overlap), "records overlap")


def test_bytes_before_or_after_the_archive_are_refused():
    """Python's zipfile shifts every offset by prepended bytes and torch's reader does not: the two would read
    different records, so what is inspected might not be what is loaded."""
    data, junk = torch_bytes(SMALL), b"PK\x03\x04" + bytes(60)
    for forged in (data + b"trailing", junk + raw_zip(_entries(data))):
        _refused(forged, "data before or after its records")
    _refused(junk + data, "not a PyTorch (.pth/.pt) checkpoint: a broken ZIP64 end record")  # torch writes ZIP64 ends


def test_torchscript_archives_and_plain_pickles_are_refused_by_name():
    script = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), script)
    _refused(script.getvalue(), "TorchScript archive")
    _refused(pickle.dumps(SMALL), "plain Python pickle")
    _refused(pickle.dumps({"x": Payload()}), "never loaded")


def _legacy(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def _legacy_claim(numel: int) -> bytes:
    """A legacy file whose pickle declares a storage of ``numel`` floats while the file holds 1000 (pickles have no
    offsets, so the 2-byte int is simply replaced by a 4-byte one)."""
    data = _legacy({"w": torch.zeros(1000)})
    i = data.index(b"M\xe8\x03")  # BININT2 1000: the storage's numel, the first time it appears
    return data[:i] + b"J" + numel.to_bytes(4, "little") + data[i + 3:]


def test_legacy_files_are_read_and_checked_like_the_others():
    state = read_state_dict(_legacy(SMALL), "old.pth")
    assert torch.equal(state["w"], SMALL["w"])
    _refused(_legacy({"w": torch.eye(3).to_sparse()}), "sparse tensor")
    _refused(_legacy({"w": torch.zeros(3), "x": Payload()}), "pickled")
    _refused(_legacy_claim(10**9), "not a PyTorch")  # the declared size does not match the file: torch says so


ODD = {
    "sparse_coo": (lambda: torch.eye(3).to_sparse(), "sparse tensor (sparse_coo)"),
    "sparse_csr": (lambda: torch.eye(3).to_sparse_csr(), "sparse tensor (sparse_csr)"),
    "meta": (lambda: torch.empty(3, 4, device="meta"), "meta tensor, which holds no values"),
    "quantized": (lambda: torch.quantize_per_tensor(torch.rand(3), 0.1, 0, torch.qint8), "is quantized"),
    "complex": (lambda: torch.zeros(3, dtype=torch.complex64), "complex-valued"),
    "float8": (lambda: torch.zeros(3, dtype=torch.float8_e4m3fn), "dtype float8_e4m3fn"),
    "broadcast_view": (lambda: torch.zeros(1).expand(10**6, 10**6), "broadcast view larger than its data"),
}


@pytest.mark.parametrize("kind", list(ODD))
def test_odd_tensor_kinds_are_refused_with_a_sentence_each(kind):
    make, fragment = ODD[kind]
    msg = _refused(torch_bytes({"fc.weight": make(), "fc.bias": torch.zeros(3)}), fragment)
    assert "fc.weight" in msg


def test_count_and_size_limits():
    many = torch_bytes({f"t{i}": torch.zeros(1) for i in range(20)})
    _refused(many, "20 tensors; up to 10 are read", limits=Limits(checkpoint_tensors=10))
    _refused(many, "archive has 26 entries; up to 8 are read", limits=Limits(checkpoint_records=8))
    shared = torch.zeros(MiB // 4)
    _refused(torch_bytes({f"v{i}": shared for i in range(8)}), "more than 4 MB (views counted)",
             limits=Limits(checkpoint_tensor_bytes=4 * MiB))
    _refused(torch_bytes({"w": torch.zeros(2 * MiB)}), "holds 8 MB of data", limits=Limits(checkpoint_tensor_bytes=4 * MiB))
    _refused(torch_bytes({f"name{i}": torch.zeros(1) for i in range(2000)}), "table of tensors",
             limits=Limits(checkpoint_pickle_bytes=1024))


def _safetensors(header: dict | bytes, body: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


@pytest.mark.parametrize(("data", "fragment"), [
    (b"\xff" * 8 + b"{}", "header length is 18,446,744,073,709,551,615 bytes"),
    (_safetensors(b"{}")[:9], "which the file cannot hold"),
    (_safetensors(b"[" * 100_000 + b"]" * 100_000), "nested 100,000 levels deep"),
    (_safetensors(b"\xff\xfe{}"), "is not UTF-8"),
    (_safetensors({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, bytes(8)), "no supported dtype"),
    (_safetensors({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, bytes(4)), "invalid shape"),
    (_safetensors({"w": {"dtype": "F32", "shape": [10**9], "data_offsets": [0, 4 * 10**9]}}, bytes(4)), "points outside"),
    (_safetensors({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, bytes(8)), "does not match its shape"),
])
def test_safetensors_headers_are_checked_before_loading(data, fragment):
    _refused(data, fragment, filename="w.safetensors")


def test_a_valid_safetensors_file_reads():
    state = read_state_dict(save_safetensors(SMALL), "w.safetensors")
    assert torch.equal(state["w"], SMALL["w"])


def test_load_checkpoint_refuses_a_broadcast_bomb_before_checking_values():
    """1e12 elements backed by 4 bytes: without the view check, the NaN scan would allocate a terabyte."""
    seeded(0)
    state = TinyCNN().state_dict()
    state["fc.weight"] = torch.zeros(1).expand(10**6, 10**6)
    with pytest.raises(ModelLoadError, match="broadcast view"):
        load_checkpoint(torch_bytes(state), "w.pth", "resnet18", 5)


# --------------------------------------------------------------------------------------------
# bombs and the weights-only override, in a capped child run with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1


def _read(data: bytes) -> list[str]:
    return sorted(read_state_dict(data, "w.pth"))


def _control_env_override(data: bytes) -> list[str]:
    """torch.load *without* an explicit weights_only unpickles under the override: the payload runs. Run last."""
    import hostile

    torch.load(io.BytesIO(data))
    return hostile.RAN


CAPPED = {
    "torch_bomb_3.9g": (lambda: torch_bomb(4000), _read, "ModelLoadError", "is compressed"),
    "control_torch_load_bomb": (lambda: torch_bomb(4000), lambda d: torch.load(io.BytesIO(d), weights_only=True),
                                "untyped RuntimeError", ""),
    "broadcast_1e12": (lambda: torch_bytes({"w": torch.zeros(1).expand(10**6, 10**6)}), _read, "ModelLoadError",
                       "broadcast view"),
    "legacy_4g_claim": (lambda: _legacy_claim(10**9), _read, "ModelLoadError", "not a PyTorch"),
    "legacy_payload": (lambda: _legacy({"w": torch.zeros(2), "x": Payload()}), _read, "ModelLoadError", "pickled"),
    "pickled_payload": (lambda: torch_bytes({"w": torch.zeros(2), "x": Payload()}), _read, "ModelLoadError", "pickled"),
    **{f"odd_{k}": (lambda make=make: torch_bytes({"w": make()}), _read, "ModelLoadError", frag)
       for k, (make, frag) in ODD.items()},
    "control_env_override": (lambda: torch_bytes({"x": Payload()}), _control_env_override, None, "payload ran"),
}


def test_checkpoint_bombs_and_pickles_under_a_cap_with_the_weights_only_override_set():
    results = run_capped("test_untrusted_checkpoints", list(CAPPED), headroom_mib=1024,
                         env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
    for name, (_, _, error, fragment) in CAPPED.items():
        r = results[name]
        assert r["error"] == error, (name, r)
        assert fragment in (r["message"] if error else str(r["value"])), (name, r)
        if not name.startswith("control"):
            assert r["ran"] == [], (name, r)  # no pickle ever executed, though the override was set
            assert not r.get("chained") and r["seconds"] < 20 and r["rss_mib"] < 300, (name, r)
