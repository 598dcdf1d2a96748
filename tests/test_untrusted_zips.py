"""The zip boundary, through both readers (the Evaluate page's set reader and the lab's own-data reader): names,
encryption, compression methods, entry counts, lying headers, and bombs under a memory and time cap. Every zip is
generated here, byte by byte where a header has to lie."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from helpers import assert_clean_error, png_bytes, random_image, zip_bytes
from hostile import Entry, MiB, bomb_zip, bzip2_zeros, deflate_zeros, raw_zip, run_capped, zeros_crc

from xai_core import ImageError, metrics
from xai_core.lab import folders
from xai_core.untrusted import LIMITS, Limits, MemberError, UploadZip, zipscan

PNG = png_bytes(random_image(16, 16))
READERS = {"set": lambda d: metrics.read_zip(d)[0], "own data": folders.read_class_zip}


def _refused(data: bytes, fragment: str) -> None:
    for name, read in READERS.items():
        with pytest.raises(ImageError) as info:
            read(data)
        msg = assert_clean_error(info.value)
        assert fragment in msg, (name, msg)


@pytest.mark.parametrize("name", [b"../evil.png", b"/etc/evil.png", b"C:\\evil.png", b"cats/../../evil.png",
                                  b"..\\evil.png", b"cats\\..\\..\\evil.png", b"c:evil.png"])
def test_names_that_point_outside_the_archive_refuse_the_zip(name):
    _refused(raw_zip([Entry("cats/1.png", PNG), Entry(name, PNG)]), "points outside the archive")


@pytest.mark.parametrize("name", [b"cats/a\x01b.png", b"cats/a\x1b[31m.png", "cats/x\u202egnp.exe.png".encode(),
                                  b"cats/a\x7f.png"])
def test_names_with_control_or_bidi_characters_refuse_the_zip(name):
    _refused(raw_zip([Entry("cats/1.png", PNG), Entry(name, PNG, flags=0x800)]), "control characters")


def test_names_flagged_utf8_that_are_not_utf8_refuse_the_zip():
    _refused(raw_zip([Entry(b"cats/\xff\xfe.png", PNG, flags=0x800)]), "not valid UTF-8")


def test_legacy_cp437_names_and_backslash_separators_are_read():
    data = raw_zip([Entry(b"caf\x82\\1.png", PNG), Entry(b"caf\x82\\2.png", PNG), Entry("dogs/3.png", PNG)])
    fs = folders.read_class_zip(data)
    assert fs.classes == ["café", "dogs"] and fs.names[0] == "café/1.png"
    assert [it.name for it in metrics.read_zip(data)[0]] == ["café/1.png", "café/2.png", "dogs/3.png"]


def test_overlong_names_refuse_the_zip():
    _refused(raw_zip([Entry("cats/" + "a" * 2000 + ".png", PNG)]), "file name of 2,009 characters")


@pytest.mark.parametrize(("entry", "fragment"), [
    (Entry("cats/1.png", PNG, flags=0x1), "password-protected"),
    (Entry("cats/1.png", PNG, method=99), "compression method 99"),
    (Entry("cats/1.png", PNG, method=14), "compression method 14"),  # lzma: not read here
    (Entry("cats/1.png", PNG, size=10), "does not match"),  # a lying stored size
    (Entry("cats/1.png", PNG, crc=1234), "does not match"),
    (Entry("cats/1.png", zipfile._get_compressor(8).compress(PNG)[:-20], method=8, crc=zipfile.crc32(PNG),
           size=len(PNG)), "is corrupt"),  # truncated deflate
])
def test_members_that_cannot_be_read_are_skipped_with_their_reason(entry, fragment):
    _refused(raw_zip([entry]), "None of the images in the zip could be read")
    _refused(raw_zip([entry]), fragment)
    items, notes = metrics.read_zip(raw_zip([entry, Entry("cats/2.png", PNG)]))
    assert [it.name for it in items] == ["cats/2.png"] and fragment in notes[0]


def test_too_many_entries_are_refused_before_the_directory_is_parsed(monkeypatch):
    many = raw_zip([Entry(f"cats/{i}.png", b"") for i in range(LIMITS.zip_members + 1)])
    _refused(many, "4,097 entries")
    # The end record lies (1 entry) about a directory of 200,000: refused from its size, zipfile never parses it.
    huge = raw_zip([Entry(f"{i}.png", b"") for i in range(200_000)], declared_entries=1)

    def no_parse(*_a, **_k):
        raise AssertionError("zipfile parsed the directory")

    monkeypatch.setattr(zipscan.zipfile, "ZipFile", no_parse)
    with pytest.raises(ImageError, match=r"a 10.6 MB directory, more than 4,096 entries would need; zip a smaller"):
        UploadZip(huge)


def test_an_end_record_that_understates_a_small_directory_is_caught_after_parsing():
    data = raw_zip([Entry(f"c/{i}.png", b"") for i in range(50)], declared_entries=3)
    with pytest.raises(ImageError, match="50 entries; up to 10 are read"):
        UploadZip(data, limits=Limits(zip_members=10))


def test_a_member_is_inflated_only_up_to_its_limit():
    z = UploadZip(bomb_zip("x.bin", 8, 64, lie=True), limits=Limits(zip_member_bytes=MiB))
    with pytest.raises(MemberError, match=r"x.bin inflates to more than 1 MB, the limit per file"):
        z.read("x.bin")
    assert MiB < z.inflated <= 2 * MiB  # stopped one step past the limit, not at the declared or real size
    z = UploadZip(bomb_zip("x.bin", 12, 1, lie=False), limits=Limits(zip_member_bytes=MiB))
    with pytest.raises(MemberError, match="inflates to more than 1 MB"):
        z.read("x.bin")
    assert z.inflated <= 2 * MiB


def test_the_total_inflated_over_a_zip_is_bounded():
    kernel = Entry("a/0.bin", deflate_zeros(3), 8, crc=zeros_crc(3 * MiB), size=3 * MiB)
    data = raw_zip([kernel] + [Entry(f"a/{i}.bin", kernel.data, 8, crc=kernel.crc, size=kernel.size, same_as=0)
                               for i in range(1, 10)])  # ten names, one overlapping payload
    z = UploadZip(data, limits=Limits(zip_total_bytes=10 * MiB))
    for i in range(3):
        assert len(z.read(f"a/{i}.bin")) == 3 * MiB
    with pytest.raises(ImageError, match="inflates to more than 10 MB in total") as info:
        z.read("a/3.bin")
    assert not isinstance(info.value, MemberError)  # the whole zip stops, not just this member


def test_masks_and_boxes_csv_go_through_the_same_limits(monkeypatch):
    img = png_bytes(np.full((40, 40, 3), 120, np.uint8))
    mask = Entry("a/1_mask.png", deflate_zeros(4), 8, crc=zeros_crc(4 * MiB), size=4 * MiB)
    csv = Entry("boxes.csv", deflate_zeros(4), 8, crc=zeros_crc(4 * MiB), size=4 * MiB)
    monkeypatch.setattr(folders, "MAX_FILE_BYTES", MiB)
    fs = folders.read_class_zip(raw_zip([Entry("a/1.png", img), Entry("a/2.png", img), mask, csv]))
    assert fs.names == ["a/1.png", "a/2.png"] and fs.regions == [None, None]
    assert any("boxes.csv is ignored" in n and "more than 1 MB" in n for n in fs.notes)
    assert any("a/1.png: its mask or box is ignored" in n and "more than 1 MB" in n for n in fs.notes)


def test_a_hostile_boxes_csv_in_a_zip_gets_its_line():
    img = png_bytes(np.full((40, 40, 3), 120, np.uint8))
    data = zip_bytes({"a/1.png": img, "boxes.csv": b"filename,x0,y0,x1,y1\n1.png,0,0,1e400,5\n"})
    with pytest.raises(ImageError, match="Box CSV line 2 has a coordinate that is not a pixel position"):
        folders.read_class_zip(data)


def test_nested_zips_are_never_opened():
    inner = zip_bytes({"cats/1.png": PNG})
    items, notes = metrics.read_zip(zip_bytes({"a.png": PNG, "inner.png": inner, "inner.zip": inner}))
    assert [it.name for it in items] == ["a.png"] and "ZIP archive" in notes[0]


def test_the_readers_share_the_boundary():
    """No reader opens a zip by itself: both go through UploadZip (the lab imports the set reader's extensions)."""
    import inspect

    for mod in (metrics.sets, folders):
        src = inspect.getsource(mod)
        assert "UploadZip(" in src and "zipfile.ZipFile(io.BytesIO" not in src


# --------------------------------------------------------------------------------------------
# bombs, under an address-space cap in a child process


def _zipfile_reads_4k(data: bytes) -> int:
    """What the old readers did (zf.open + chunked read): bzip2 inflates a whole input chunk at once."""
    zf = zipfile.ZipFile(io.BytesIO(data))
    return len(zf.open(zf.namelist()[0]).read(4096))


def _overlap_total() -> bytes:
    kernel = Entry("set/0.png", deflate_zeros(60), 8, crc=zeros_crc(60 * MiB), size=60 * MiB)
    return raw_zip([kernel] + [Entry(f"set/{i}.png", kernel.data, 8, crc=kernel.crc, size=kernel.size, same_as=0)
                               for i in range(1, 20)])


def _mask_bomb() -> bytes:
    img = Entry("cats/1.png", PNG)
    return raw_zip([img, Entry("cats/2.png", PNG), Entry("cats/1_mask.png", bzip2_zeros(100), 12, crc=0, size=1024)])


def _class_notes(data: bytes) -> list[str]:
    return folders.read_class_zip(data).notes


CAPPED = {
    "deflate_4g_lying_header": (lambda: bomb_zip("set/a.png", 8, 4096, lie=True), metrics.read_zip, "ImageError",
                                "inflates to more than 64 MB"),
    "deflate_2g_honest_header": (lambda: bomb_zip("cats/a.png", 8, 2048, lie=False), folders.read_class_zip,
                                 "ImageError", "inflates to more than 64 MB"),
    "bzip2_4g_lying_header": (lambda: bomb_zip("set/a.png", 12, 100, lie=True), metrics.read_zip, "ImageError",
                              "inflates to more than 64 MB"),
    "bzip2_4g_mask": (_mask_bomb, _class_notes, None, "cats/1.png: its mask or box is ignored"),
    "overlapping_1g_total": (_overlap_total, metrics.read_zip, "ImageError", "in total"),
    "200k_entries": (lambda: raw_zip([Entry(f"{i}.png", b"") for i in range(200_000)], declared_entries=1),
                     metrics.read_zip, "ImageError", "more than 4,096 entries would need"),
    # control: the same bzip2 bomb read the way zipfile reads (4 KB at a time) exhausts the cap
    "control_zipfile_bzip2": (lambda: bomb_zip("a.png", 12, 100, lie=False), _zipfile_reads_4k, "untyped MemoryError",
                              ""),
}


def test_zip_bombs_under_a_memory_and_time_cap():
    results = run_capped("test_untrusted_zips", list(CAPPED), headroom_mib=1024)
    for name, (_, _, error, fragment) in CAPPED.items():
        r = results[name]
        assert r["error"] == error, (name, r)
        assert fragment in (r["message"] if error else str(r["value"])), (name, r)
        if not name.startswith("control"):
            assert not r.get("chained") and r["seconds"] < 20 and r["peak_mib"] < 300, (name, r)
