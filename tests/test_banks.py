"""Banks on SQLite and PostgreSQL: formats round-trip, imports land whole or not at all, matcher rules."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from fakehashes import flip, rhex
from vigie.banks import BankStore, EntryIn
from vigie.banks.matcher import Matcher
from vigie.errors import ConflictError, ImportFormatError, NotFoundError, VigieError
from vigie.store import open_db


@pytest.fixture
def store(db_url: str) -> BankStore:
    return BankStore(open_db(db_url))


def test_bank_lifecycle(store: BankStore) -> None:
    store.create_bank("known", pdq_threshold=20, description="stand-ins")
    store.create_bank("fp", kind="allow")
    with pytest.raises(ConflictError):
        store.create_bank("known")
    with pytest.raises(VigieError):
        store.create_bank("bad name!")
    with pytest.raises(VigieError):
        store.create_bank("x", kind="other")
    rng = random.Random(1)
    store.add_entries("known", [EntryIn("md5", rhex(32, rng), category="A1"), EntryIn("pdq", rhex(64, rng))])
    banks = {b.name: b for b in store.list_banks()}
    assert banks["known"].entry_count == 2 and banks["known"].pdq_threshold == 20
    assert banks["fp"].kind == "allow" and banks["fp"].entry_count == 0
    assert store.remove_bank("known") == 2
    with pytest.raises(NotFoundError):
        store.get_bank("known")


SAMPLES = {
    "csv": (
        "signal_type,value,source,category,ai_generated,external_id,note,enabled,series\n"
        "pdq,{pdq},ncmec,A1,true,ext-1,first,true,S1\n"
        "md5,{md5},iwf,B2,,ext-2,,false,\n"
    ),
    "te": "# ThreatExchange text\npdq {pdq}\n\nmd5 {md5}\n",
    "hashlist": "{md5}  ./a.jpg\n{sha1}\n{sha256} *b.png\n",
    "vics": json.dumps(
        {
            "odata.metadata": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/CUSTOM/$metadata#Cases",
            "value": [
                {
                    "CaseID": 7,
                    "Media": [
                        {"MediaID": 11, "MD5": "{MD5}", "SHA1": "{SHA1}", "Category": 1, "Series": "s"},
                        {
                            "MediaID": 12,
                            "MD5": "{MD5B}",
                            "Category": 2,
                            "AlternativeHashes": [{"HashName": "PDQ", "HashValue": "{pdq}"}],
                        },
                    ],
                }
            ],
        }
    ),
}


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
def test_format_round_trip(store: BankStore, tmp_path: Path, fmt: str) -> None:
    rng = random.Random(2)
    vals = {"pdq": rhex(64, rng), "md5": rhex(32, rng), "sha1": rhex(40, rng), "sha256": rhex(64, rng)}
    vals |= {"MD5": vals["md5"].upper(), "SHA1": vals["sha1"].upper(), "MD5B": rhex(32, rng).upper()}
    text = SAMPLES[fmt]
    for k, v in vals.items():
        text = text.replace("{" + k + "}", v)
    src = tmp_path / f"in.{fmt}"
    src.write_text(text)
    store.create_bank("a")
    store.create_bank("b")
    n = store.import_file("a", src, fmt)
    first = sorted((e.signal_type, e.value) for e in store.iter_entries("a"))
    assert len(first) == n and n >= 2
    assert all(v == v.lower() for _, v in first)
    out = io.StringIO()
    assert store.export("a", fmt, out) == n
    (tmp_path / f"out.{fmt}").write_text(out.getvalue())
    store.import_file("b", tmp_path / f"out.{fmt}", fmt)
    assert sorted((e.signal_type, e.value) for e in store.iter_entries("b")) == first
    if fmt == "csv":
        labels = {e.value: e for e in store.iter_entries("b")}
        e = labels[vals["pdq"]]
        assert (e.source, e.category, e.ai_generated, e.external_id, e.enabled) == (
            "ncmec",
            "A1",
            True,
            "ext-1",
            True,
        )
        assert e.extra == {"series": "S1"} and labels[vals["md5"]].enabled is False
    if fmt == "vics":
        cats = {e.value: (e.category, e.external_id) for e in store.iter_entries("a")}
        assert cats[vals["md5"]] == ("1", "11") and cats[vals["pdq"]] == ("2", "12")


def test_bad_import_names_every_bad_line_and_writes_nothing(store: BankStore, tmp_path: Path) -> None:
    rng = random.Random(3)
    lines = [f"pdq {rhex(64, rng)}" for _ in range(10)]
    lines[2] = "pdq nothex"
    lines[5] = "sha512 " + rhex(128, rng)
    lines[8] = "pdq " + rhex(60, rng)
    src = tmp_path / "bad.te"
    src.write_text("\n".join(lines) + "\n")
    store.create_bank("k")
    with pytest.raises(ImportFormatError) as err:
        store.import_file("k", src, "te")
    assert [e.line for e in err.value.errors] == [3, 6, 9]
    assert "line 6" in str(err.value) and "unknown signal type" in str(err.value)
    assert store.get_bank("k").entry_count == 0


def test_labels_longer_than_their_columns_are_bad_lines_on_both_databases(
    store: BankStore, tmp_path: Path
) -> None:
    """PostgreSQL refuses a value longer than its column (SQLite keeps it): such a label must be a bad
    line of the import, named with the file's own line number, never a failed transaction (a 500)."""
    store.create_bank("k")
    ok = rhex(32, random.Random(4))
    src = tmp_path / "long.csv"
    src.write_text(
        "signal_type,value,source,category,ai_generated,external_id,note,enabled\n"
        f"md5,{ok},pytest,A1,,e-1,,true\n"
        f"md5,{rhex(32, random.Random(5))},pytest,{'c' * 300},,{'e' * 600},,true\n"
    )
    with pytest.raises(ImportFormatError) as err:
        store.import_file("k", src, "csv")
    [bad] = err.value.errors
    assert (
        bad.line == 3
        and "category is 300 characters, over 256" in bad.message
        and "external_id" in bad.message
    )
    vics = tmp_path / "long.json"
    vics.write_text(json.dumps({"value": [{"MediaID": 1, "MD5": ok, "Category": "c" * 300}]}))
    with pytest.raises(ImportFormatError, match="category is 300 characters"):
        store.import_file("k", vics, "vics")
    with pytest.raises(ImportFormatError, match="source is 257 characters"):
        store.add_entries("k", [EntryIn("md5", ok), EntryIn("md5", ok, source="s" * 257)])
    assert store.get_bank("k").entry_count == 0
    store.add_entries("k", [EntryIn("md5", ok, category="c" * 256, external_id="e" * 512)])  # at the limit
    assert store.get_bank("k").entry_count == 1


def test_malformed_search_data_is_a_bad_line_not_a_broken_verifier(store: BankStore, tmp_path: Path) -> None:
    """Keypoints and hints are written by `vigie bank add`, but a CSV column or an API body can carry the
    same keys; a bad value would fail every upload the verifier meets it on, so it is a bad line instead."""
    store.create_bank("k")
    pdq = rhex(64, random.Random(6))
    src = tmp_path / "extras.csv"
    src.write_text(f"signal_type,value,features,verify_hints\npdq,{pdq},,\npdq,{pdq},not-keypoints,\n")
    with pytest.raises(ImportFormatError) as err:
        store.import_file("k", src, "csv")
    [bad] = err.value.errors
    assert bad.line == 3 and "features" in bad.message
    sparse = "0" * 63 + "f"  # 4 bits: nearly any hash would agree with it
    bad_extras = [{"verify_hints": ["zz" * 32]}, {"verify_hints": "ab" * 32}, {"of": 7}]
    bad_extras += [{"pdq_stable": sparse}, {"pdq_stable": "F" * 16 + "0" * 48}, {"pdq_stable": 7}]
    for extra in bad_extras:
        with pytest.raises(ImportFormatError, match="line 1"):
            store.add_entries("k", [EntryIn("pdq", pdq, extra=extra)])
    assert store.get_bank("k").entry_count == 0


def test_where_files_sat_on_a_drive_never_travels_with_a_match(store: BankStore, tmp_path: Path) -> None:
    """md5sum names and VICS RelativeFilePath say where seized files sat (case folders, people's names):
    the bank keeps them for its owner, but a match, and so every platform answered, never carries them;
    only a VICS export writes the field VICS defines."""
    rng = random.Random(6)
    md5a, md5b = rhex(32, rng), rhex(32, rng)
    listed = tmp_path / "list.md5"
    listed.write_text(f"{md5a}  ./case 17/family name/img_004.jpg\n")
    vics = tmp_path / "case.json"
    media = {"MediaID": 9, "MD5": md5b, "Category": 1, "RelativeFilePath": "Case17\\Suspect\\DCIM\\b.jpg"}
    vics.write_text(json.dumps({"value": [media]}))
    store.create_bank("k")
    store.import_file("k", listed, "hashlist")
    store.import_file("k", vics, "vics")
    kept = {e.value: e for e in store.iter_entries("k")}
    assert (
        kept[md5a].extra == {"file_name": "./case 17/family name/img_004.jpg"}
        and kept[md5a].external_id is None
    )
    matcher = Matcher.open(store.db)
    for md5 in (md5a, md5b):
        [m] = matcher.match(md5=md5).matches
        assert "file_name" not in m.labels and "RelativeFilePath" not in m.labels, m.labels
    assert m.labels["external_id"] == "9" and m.labels["category"] == "1"
    csv_out, vics_out = io.StringIO(), io.StringIO()
    store.export("k", "csv", csv_out)
    assert "family name" not in csv_out.getvalue() and "Suspect" not in csv_out.getvalue()
    store.export("k", "vics", vics_out)
    assert "Suspect" in vics_out.getvalue() and "family name" not in vics_out.getvalue()


def test_label_limits_are_the_columns_sizes() -> None:
    from vigie.banks.model import LABEL_MAX
    from vigie.store import Entry

    assert {k: Entry.__table__.c[k].type.length for k in LABEL_MAX} == LABEL_MAX


def test_csv_without_header_is_refused(store: BankStore, tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("pdq," + "0" * 64 + "\n")
    store.create_bank("k")
    with pytest.raises(ImportFormatError, match="header"):
        store.import_file("k", src, "csv")


def _bank_with(store: BankStore, name: str, hashes: list[str], **kw: object) -> list[int]:
    store.create_bank(name, **kw)  # type: ignore[arg-type]
    store.add_entries(name, [EntryIn("pdq", h, category=name) for h in hashes])
    return [e.id for e in store.iter_entries(name)]


def test_matcher_thresholds_quality_allow_and_exact(store: BankStore) -> None:
    rng = random.Random(4)
    known = [rhex(64, rng) for _ in range(50)]
    _bank_with(store, "strict", known[:25], pdq_threshold=10)
    _bank_with(store, "loose", known[25:], pdq_threshold=31, pdq_min_quality=80)
    md5 = rhex(32, rng)
    store.add_entries("strict", [EntryIn("md5", md5, external_id="file-1")])
    m = Matcher.open(store.db)

    assert [x.bank for x in m.match(pdq=flip(known[0], 8, rng), pdq_quality=100).matches] == ["strict"]
    assert m.match(pdq=flip(known[0], 20, rng), pdq_quality=100).matches == []  # over strict's 10
    hit = m.match(pdq=flip(known[30], 25, rng), pdq_quality=90).matches
    assert [(x.bank, x.distance) for x in hit] == [("loose", 25)] and hit[0].labels["category"] == "loose"
    assert m.match(pdq=flip(known[30], 25, rng), pdq_quality=60).matches == []  # under loose's quality 80
    exact = m.match(md5=md5.upper()).matches
    assert [(x.signal, x.distance, x.labels["external_id"]) for x in exact] == [("md5", 0, "file-1")]
    assert set(exact[0].to_json()) == {"bank", "signal", "distance", "entry_id", "labels"}

    # an allow bank (known false positive) suppresses PDQ matches near it, not elsewhere
    _bank_with(store, "fp", [known[1]], kind="allow", pdq_threshold=31)
    m.refresh()
    res = m.match(pdq=flip(known[1], 3, rng), pdq_quality=100)
    assert res.matches == [] and [x.bank for x in res.suppressed] == ["strict"]
    assert m.match(md5=md5).matches, "a PDQ allow entry never suppresses an unrelated exact match"


def test_variants_match_and_name_their_transform(store: BankStore) -> None:
    rng = random.Random(5)
    known = rhex(64, rng)
    _bank_with(store, "k", [known])
    m = Matcher.open(store.db)
    res = m.match(pdq=rhex(64, rng), pdq_variants={"mirror_lr": flip(known, 4, rng)}, pdq_quality=100)
    assert [(x.distance, x.transform) for x in res.matches] == [(4, "mirror_lr")]


def _frames(n: int, rng: random.Random, of: str = "v.mp4") -> list[EntryIn]:
    """Entries as `vigie bank add` makes them for a video's frames."""
    extra = {"derived": "frame", "of": of, "frames": n}
    return [EntryIn("pdq", rhex(64, rng), external_id=of, extra={**extra, "t": float(t)}) for t in range(n)]


def test_near_hits_are_video_frames_and_evidence_never_matches(store: BankStore, tmp_path: Path) -> None:
    rng = random.Random(6)
    store.create_bank("k", pdq_threshold=31)
    frames = _frames(3, rng)
    store.add_entries("k", [*frames, EntryIn("pdq", photo := rhex(64, rng))])
    m = Matcher.open(store.db, tmp_path / "idx")
    query = flip(frames[0].value, 45, rng)
    assert m.match(pdq=query, pdq_quality=100).matches == []
    [res] = m.match_many([{"pdq": query, "pdq_quality": 100}], near=64)
    assert res.matches == [] and [(x.bank, x.distance) for x in res.near] == [("k", 45)]
    [res] = m.match_many([{"pdq": flip(photo, 45, rng), "pdq_quality": 100}], near=64)
    assert res.near == []  # only video frames are searched that far: never the hash lists beside them
    [res] = m.match_many([{"pdq": query, "pdq_quality": 30}], near=64)
    assert res.near == []  # under the bank's minimum quality: no evidence either
    [res] = m.match_many([{"pdq": flip(frames[1].value, 20, rng), "pdq_quality": 100}], near=64)
    assert [x.distance for x in res.matches] == [20] and res.near == []  # within the threshold: a match

    m.save_snapshot()  # the frame index travels in snapshots and follows bank changes
    store.set_enabled("k", [int(m.match(pdq=frames[1].value).matches[0].entry_id)], False)
    store.add_entries("k", later := _frames(1, rng, "w.mp4"))
    loaded = Matcher.open(store.db, tmp_path / "idx")
    [res] = loaded.match_many([{"pdq": flip(later[0].value, 50, rng)}], near=64)
    assert [x.labels["of"] for x in res.near] == ["w.mp4"]
    [res] = loaded.match_many([{"pdq": flip(frames[1].value, 50, rng)}], near=64)
    assert res.near == []  # a disabled frame is no evidence
    _bank_with(store, "fp", [query], kind="allow", pdq_threshold=31)
    loaded.refresh()
    [res] = loaded.match_many([{"pdq": query, "pdq_quality": 100}], near=64)
    assert res.near == [] and res.matches == []  # what an allow bank covers is not evidence


def test_snapshot_catches_up_incrementally(store: BankStore, tmp_path: Path) -> None:
    rng = random.Random(6)
    hashes = [rhex(64, rng) for _ in range(300)]
    ids = _bank_with(store, "k", hashes[:200])
    m = Matcher.open(store.db, tmp_path / "idx")
    m.save_snapshot()
    # changes made by "another process" after the snapshot
    store.add_entries("k", [EntryIn("pdq", h) for h in hashes[200:]])
    store.remove_entries("k", ids[:10])
    store.set_enabled("k", ids[10:20], False)
    _bank_with(store, "other", [hashes[0]])
    store.remove_bank("other")
    loaded = Matcher.open(store.db, tmp_path / "idx")
    fresh = Matcher(store.db)
    fresh._build()
    for h in hashes:
        a = sorted((x.bank, x.entry_id) for x in loaded.match(pdq=h).matches)
        b = sorted((x.bank, x.entry_id) for x in fresh.match(pdq=h).matches)
        assert a == b
    assert loaded.match(pdq=hashes[0]).matches == []
    assert loaded.match(pdq=hashes[25]).matches and loaded.match(pdq=hashes[250]).matches
    # the same process sees a change at once after refresh
    store.set_enabled("k", ids[25:26], False)
    loaded.refresh()
    assert loaded.match(pdq=hashes[25]).matches == []


def test_corrupt_snapshot_falls_back_to_the_database(store: BankStore, tmp_path: Path) -> None:
    rng = random.Random(7)
    h = rhex(64, rng)
    _bank_with(store, "k", [h])
    m = Matcher.open(store.db, tmp_path / "idx")
    m.save_snapshot()
    (tmp_path / "idx" / "pdq" / "manifest.json").write_text("{not json")
    assert Matcher.open(store.db, tmp_path / "idx").match(pdq=h).matches


def test_added_files_are_named_by_their_content_unless_asked() -> None:
    """A seized file's name or folder can identify a person or describe the content, and an entry's
    external_id travels with every match and export: by default it is the file's sha256."""
    from vigie.banks.ingest import entry_name

    sha = "ab" * 32
    assert entry_name("/cases/2026-17/family name/img_004.jpg", sha) == f"sha256:{sha}"
    assert entry_name("/cases/2026-17/family name/img_004.jpg", sha, "name") == "img_004.jpg"
    assert entry_name("dump.zip!sub/dir/clip.mp4", sha, "name") == "clip.mp4"
    assert entry_name("C:\\cases\\img.png", sha, "name") == "img.png"
    assert entry_name("dump.zip!sub/x.jpg", sha, "path") == "dump.zip!sub/x.jpg"


def test_processes_opening_a_fresh_database_at_once_all_get_it_migrated(db_url: str) -> None:
    """`vigie serve --workers 2` on a fresh home ran the migrations in both processes at once, and one died
    on 'table banks already exists' (SQLite). PostgreSQL replicas starting together take an advisory lock."""
    import subprocess
    import sys

    code = "import sys; from vigie.store import open_db; open_db(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, db_url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    assert BankStore(open_db(db_url)).list_banks() == []
