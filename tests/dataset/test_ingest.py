"""Tests for dataset.ingest: results per file, duplicates, metadata stripping, bad uploads."""

from __future__ import annotations

import io
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dataset.images import smear_id_for
from dataset.ingest import (
    IngestResult,
    MetaError,
    SmearMeta,
    ingest_files,
    ingest_paths,
    upload_label,
)
from dataset.store import Store


def snapshot(store: Store) -> tuple[dict[str, int], list]:
    return store.table_versions(), store.smears()


def stored_png(store: Store, smear_id: str) -> bytes:
    import pyarrow.compute as pc

    t = store.tables.read("smears", ["image_png"], pc.field("smear_id") == smear_id)
    return t.column("image_png")[0].as_py()


def png_chunk_types(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width × height RGB pixels, with almost no data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def jpeg_claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose frame header is patched to claim width × height."""
    at = jpeg.index(b"\xff\xc0")
    head = jpeg[: at + 5] + struct.pack(">HH", height, width)
    return head + jpeg[at + 9 :]


@pytest.fixture
def rgb(make_smear):
    return make_smear(96, 80, seed=11).rgb


# ------------------------------------------------------------------ accepted uploads
@pytest.mark.parametrize(("fmt", "ext"), [("PNG", "png"), ("TIFF", "tif"), ("BMP", "bmp")])
def test_lossless_formats_are_added_with_exact_pixels_and_tiles(store, rgb, encode_image, fmt, ext):
    [res] = ingest_files(store, [(f"smear.{ext}", encode_image(rgb, fmt))], actor="tester")
    assert res.status == "added" and res.reason is None
    assert res.smear_id == smear_id_for(rgb) and re.fullmatch(r"s[0-9a-f]{12}", res.smear_id)
    assert res.tiles == 4 == len(store.tiles(res.smear_id))
    assert np.array_equal(store.smear_image(res.smear_id), rgb)
    assert store.smear(res.smear_id).label == f"smear.{ext}"


def test_jpeg_is_stored_as_its_decoded_pixels(store, rgb, encode_image):
    data = encode_image(rgb, "JPEG", quality=90)
    [res] = ingest_files(store, [("smear.jpg", data)], actor="tester")
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert res.status == "added"
    assert np.array_equal(store.smear_image(res.smear_id), decoded)


def test_reencoded_copy_is_a_duplicate_and_stores_nothing(store, rgb, encode_image):
    jpeg = encode_image(rgb, "JPEG", quality=85)
    [first] = ingest_files(store, [("a.jpg", jpeg)], actor="tester")
    decoded = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    before = snapshot(store)
    results = ingest_files(
        store, [("copy.png", encode_image(decoded, "PNG")), ("again.jpg", jpeg)], actor="tester"
    )
    assert [r.status for r in results] == ["duplicate", "duplicate"]
    assert {r.smear_id for r in results} == {first.smear_id}
    assert results[0].tiles == first.tiles
    assert "'a.jpg'" in results[0].reason
    assert snapshot(store) == before


def test_duplicate_within_one_batch(store, rgb, encode_image):
    data = encode_image(rgb, "PNG")
    results = ingest_files(store, [("one.png", data), ("two.png", data)], actor="tester")
    assert [r.status for r in results] == ["added", "duplicate"]
    assert len(store.smears()) == 1


def test_a_folder_is_committed_in_batches_with_duplicates_found_across_them(
    store, make_smear, encode_image, tmp_path, monkeypatch
):
    from dataset import ingest

    monkeypatch.setattr(ingest._Batcher, "BATCH_SMEARS", 2)
    rgbs = [make_smear(96, 80, seed=s).rgb for s in range(5)]
    [first] = ingest_files(store, [("stored.png", encode_image(rgbs[4]))], actor="tester")
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(["a.png", "b.png", "c.png", "d.png"]):
        (folder / name).write_bytes(encode_image(rgbs[i]))
    (folder / "e.png").write_bytes(encode_image(rgbs[0]))  # repeats a.png, an earlier batch
    (folder / "f.bmp").write_bytes(encode_image(rgbs[3], "BMP"))  # repeats d.png, same batch
    (folder / "g.png").write_bytes(encode_image(rgbs[4]))  # stored before this call
    before = store.table_versions()
    calls = []
    results = ingest_paths(
        store, [folder], on_progress=lambda d, t: calls.append((d, t)), actor="tester"
    )
    assert [r.status for r in results] == ["added"] * 4 + ["duplicate"] * 3
    assert "'a.png'" in results[4].reason and "'d.png'" in results[5].reason
    assert "'stored.png'" in results[6].reason and results[6].smear_id == first.smear_id
    assert calls == [(d, 7) for d in range(1, 8)]
    after = store.table_versions()
    # Two smears per batch: two commits of tiles and two of smears for four new smears.
    assert (after["tiles"] - before["tiles"], after["smears"] - before["smears"]) == (2, 2)
    for r, rgb in zip(results[:4], rgbs[:4], strict=True):
        assert np.array_equal(store.smear_image(r.smear_id), rgb)
        for t in store.tiles(r.smear_id):
            np.testing.assert_array_equal(
                store.tile_image(t.tile_id), rgb[t.y : t.y + t.h, t.x : t.x + t.w]
            )


def test_exif_orientation_is_applied_then_all_metadata_dropped(store, rgb):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x9003] = "2024:01:02 03:04:05"  # DateTimeOriginal
    buf = io.BytesIO()
    img = Image.fromarray(rgb)
    img.info["dpi"] = (300, 300)
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "Dr Real Name")
    img.save(buf, format="PNG", exif=exif, pnginfo=text, dpi=(300, 300))
    [res] = ingest_files(store, [("phone.png", buf.getvalue())], actor="tester")
    upright = np.rot90(rgb, -1)
    assert res.status == "added"
    stored = store.smear_image(res.smear_id)
    assert np.array_equal(stored, upright)
    assert (store.smear(res.smear_id).width, store.smear(res.smear_id).height) == (80, 96)
    png = stored_png(store, res.smear_id)
    assert set(png_chunk_types(png)) == {b"IHDR", b"IDAT", b"IEND"}
    assert b"Dr Real Name" not in png and b"PhoneMaker" not in png


def test_metadata_is_stored_with_the_smear(store, rgb, encode_image):
    meta = SmearMeta(
        patient=" P-017 ", stain="Giemsa", magnification="100x oil", um_per_px=0.1, note=""
    )
    [res] = ingest_files(store, [("m.png", encode_image(rgb))], meta, actor="tester")
    info = store.smear(res.smear_id)
    assert (info.patient, info.stain, info.magnification, info.um_per_px, info.note) == (
        "P-017",
        "Giemsa",
        "100x oil",
        0.1,
        None,
    )


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"um_per_px": -0.2}, "positive number"),
        ({"um_per_px": float("nan")}, "positive number"),
        ({"patient": "P\x00"}, "control characters"),
        ({"stain": "x" * 65}, "keep it to 64"),
    ],
)
def test_bad_metadata_is_refused_with_the_field(fields, match):
    with pytest.raises(MetaError, match=match):
        SmearMeta(**fields)


def test_image_smaller_than_a_tile_is_one_tile(store, make_smear, encode_image):
    small = make_smear(40, 34, seed=3).rgb
    [res] = ingest_files(store, [("small.png", encode_image(small))], actor="tester")
    [tile] = store.tiles(res.smear_id)
    assert (res.tiles, tile.x, tile.y, tile.w, tile.h) == (1, 0, 0, 40, 34)


def test_progress_is_reported_per_file_and_json_rows_have_the_contract_keys(
    store, rgb, encode_image
):
    calls = []
    results = ingest_files(
        store,
        iter([("a.png", encode_image(rgb)), ("b.png", b""), ("c.png", encode_image(rgb))]),
        on_progress=lambda done, total: calls.append((done, total)),
        actor="tester",
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
    row = results[1].to_json()
    assert set(row) == {"input", "status", "smear_id", "tiles", "reason", "warnings"}
    assert (row["input"], row["status"], row["smear_id"], row["tiles"]) == (
        "b.png",
        "rejected",
        None,
        0,
    )


# ------------------------------------------------------------------ converted uploads
def test_colour_formats_are_converted_to_rgb(store, rgb, encode_image):
    grey = rgb[:, :, 1]
    red = rgb[:, :, 0]
    wide = red.astype(np.uint16) * 257  # 16-bit: scaled back by the bit depth, exactly red
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[0, 0, 3] = 0  # one transparent pixel
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    cmyk = Image.fromarray(rgb).convert("CMYK")
    files = [
        ("grey.png", encode_image(grey)),
        ("wide.png", encode_image(wide)),
        ("palette.png", _save(pal, "PNG")),
        ("alpha.png", encode_image(rgba)),
        ("cmyk.tif", _save(cmyk, "TIFF")),
        ("cmyk.jpg", _save(cmyk, "JPEG")),
    ]
    results = {r.input: r for r in ingest_files(store, files, actor="tester")}
    assert {r.status for r in results.values()} == {"added"}, results
    assert np.array_equal(store.smear_image(results["grey.png"].smear_id), np.dstack([grey] * 3))
    assert np.array_equal(store.smear_image(results["wide.png"].smear_id), np.dstack([red] * 3))
    assert np.array_equal(
        store.smear_image(results["palette.png"].smear_id), np.asarray(pal.convert("RGB"))
    )
    flat = store.smear_image(results["alpha.png"].smear_id)
    assert flat[0, 0].tolist() == [255, 255, 255] and np.array_equal(flat[1:], rgb[1:])
    assert any("transparent" in w for w in results["alpha.png"].warnings)
    assert np.array_equal(
        store.smear_image(results["cmyk.tif"].smear_id), np.asarray(cmyk.convert("RGB"))
    )
    assert store.smear_image(results["cmyk.jpg"].smear_id).shape == rgb.shape


def _save(img: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def test_multipage_tiff_keeps_the_first_page_with_a_warning(store, rgb, make_smear):
    second = Image.fromarray(make_smear(96, 80, seed=99).rgb)
    data = _save(Image.fromarray(rgb), "TIFF", save_all=True, append_images=[second])
    [res] = ingest_files(store, [("stack.tif", data)], actor="tester")
    assert res.status == "added"
    assert np.array_equal(store.smear_image(res.smear_id), rgb)
    assert res.warnings and "2 pages" in res.warnings[0] and "first" in res.warnings[0]
    assert res.to_json()["warnings"] == list(res.warnings)


# ------------------------------------------------------------------ refused uploads
def _bad_uploads(rgb: np.ndarray, encode_image) -> list[tuple[str, bytes, str]]:
    jpeg = encode_image(rgb, "JPEG")
    return [
        ("empty.png", b"", r"'empty\.png' is empty"),
        ("cut.jpg", jpeg[: len(jpeg) // 2], r"'cut\.jpg' is (truncated|damaged)"),
        ("notes.png", b"patient list\nname,glucose\n", r"'notes\.png' is not a PNG.*text"),
        ("huge.png", png_claiming(50_000, 50_000), r"'huge\.png'.*(claims more pixels|megapix)"),
        ("huge.jpg", jpeg_claiming(jpeg, 50_000, 50_000), r"'huge\.jpg'.*(claims more|megapix)"),
        ("gif.png", b"GIF89a" + b"\x00" * 40, r"looks like a GIF"),
    ]


def test_each_bad_upload_gets_a_clear_reason_and_touches_nothing(store, rgb, encode_image):
    [kept] = ingest_files(store, [("kept.png", encode_image(rgb))], actor="tester")
    before = snapshot(store)
    bad = _bad_uploads(rgb, encode_image)
    results = ingest_files(store, [(name, data) for name, data, _ in bad], actor="tester")
    for (name, _, pattern), res in zip(bad, results, strict=True):
        assert res.status == "rejected" and res.input == name
        assert re.search(pattern, res.reason), res.reason
        assert res.smear_id is None and res.tiles == 0
    assert snapshot(store) == before
    assert np.array_equal(store.smear_image(kept.smear_id), rgb)


def test_header_size_is_checked_before_decoding(store):
    # These files hold almost no pixel data: had decoding started, the reason would be
    # "truncated". 12000 × 10000 passes Pillow's own bomb limit, so the workspace limit
    # (settings.max_pixels, 100 megapixels) is what refuses it.
    [res] = ingest_files(store, [("big.png", png_claiming(12_000, 10_000))], actor="tester")
    assert res.status == "rejected"
    assert "'big.png' is 12000 × 10000 pixels (120.0 megapixels)" in res.reason
    [res] = ingest_files(
        store, [("b.png", png_claiming(300, 300))], max_pixels=200 * 200, actor="tester"
    )
    assert "'b.png' is 300 × 300 pixels" in res.reason and "truncated" not in res.reason
    assert store.smears() == []


def test_good_files_are_stored_even_when_others_in_the_batch_are_bad(
    store, make_smear, encode_image
):
    a, b = make_smear(96, 80, seed=1).rgb, make_smear(96, 80, seed=2).rgb
    results = ingest_files(
        store,
        [
            ("a.png", encode_image(a)),
            ("bad.png", b"\x89PNG\r\n"),
            ("b.bmp", encode_image(b, "BMP")),
        ],
        actor="tester",
    )
    assert [r.status for r in results] == ["added", "rejected", "added"]
    assert {s.smear_id for s in store.smears()} == {smear_id_for(a), smear_id_for(b)}


def test_file_name_is_only_a_label_never_a_path(store, rgb, encode_image, tmp_path, monkeypatch):
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    evil = "../../etc/x.png"
    results = ingest_files(
        store, [(evil, encode_image(rgb)), ("..\\..\\boot.ini", b"")], actor="tester"
    )
    assert results[0].status == "added" and results[0].input == evil
    assert store.smear(results[0].smear_id).label == "x.png"
    assert results[1].status == "rejected"
    assert not (tmp_path / "etc").exists()
    outside = {p for p in tmp_path.rglob("*") if "workspace" not in p.parts}
    assert outside == {tmp_path / "a", deep}


@pytest.mark.parametrize(
    ("name", "label"),
    [("../../etc/x.png", "x.png"), ("C:\\Users\\me\\s.jpg", "s.jpg"), ("a\x00b.png", "ab.png")],
)
def test_upload_label(name, label):
    assert upload_label(name) == label
    assert upload_label("dir/") == "upload"


# ------------------------------------------------------------------ from disk
def test_ingest_paths_expands_folders_sorted_and_reports_missing_paths(
    store, make_smear, encode_image, tmp_path
):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "b.png").write_bytes(encode_image(make_smear(50, 40, seed=1).rgb))
    (folder / "a.jpg").write_bytes(encode_image(make_smear(50, 40, seed=2).rgb, "JPEG"))
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"")
    (folder / "sub").mkdir()
    (folder / "sub" / "c.png").write_bytes(encode_image(make_smear(50, 40, seed=3).rgb))
    empty = tmp_path / "empty"
    empty.mkdir()
    explicit = tmp_path / "named.txt"
    explicit.write_text("hello")
    calls = []
    results = ingest_paths(
        store,
        [folder, tmp_path / "missing.png", empty, explicit],
        on_progress=lambda d, t: calls.append((d, t)),
        actor="tester",
    )
    assert [(r.input, r.status) for r in results] == [
        (str(folder / "a.jpg"), "added"),
        (str(folder / "b.png"), "added"),
        (str(tmp_path / "missing.png"), "rejected"),
        (str(empty), "rejected"),
        (str(explicit), "rejected"),
    ]
    assert "does not exist" in results[2].reason
    assert "holds no" in results[3].reason
    assert "not a PNG" in results[4].reason
    assert calls[-1] == (5, 5)
    assert sorted(s.label for s in store.smears()) == ["a.jpg", "b.png"]


def test_result_is_a_frozen_record():
    r = IngestResult("x.png", "rejected", reason="r")
    with pytest.raises(AttributeError):
        r.status = "added"  # type: ignore[misc]
