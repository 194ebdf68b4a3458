# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mapset names GRASS writes into a mapset, rewritten after a restore
(worker/mapset_names.py), one test per place."""

import os

from actinia_resume_plugin.worker.mapset_names import rename_mapset_references

OLD, NEW = "mapset_ee3e1", "mapset_7a2b9"


def write(base, rel, text):
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_reclass_header_and_mask(tmp_path):
    write(tmp_path, "cellhd/r", f"reclass\nname: a\nmapset: {OLD}\n#1\n1\n")
    write(tmp_path, "cellhd/MASK", f"reclass\nname: a\nmapset: {OLD}\n")
    write(tmp_path, "cellhd/perm", "reclass\nname: e\nmapset: PERMANENT\n")
    plain = f"proj: 99\nmapset: {OLD}\n"  # not a reclass: untouched
    write(tmp_path, "cellhd/a", plain)
    changed = rename_mapset_references(str(tmp_path), OLD, NEW)
    assert sorted(changed) == ["cellhd/MASK", "cellhd/r"]
    assert (tmp_path / "cellhd/r").read_text() == \
        f"reclass\nname: a\nmapset: {NEW}\n#1\n1\n"
    assert (tmp_path / "cellhd/perm").read_text().endswith("PERMANENT\n")
    assert (tmp_path / "cellhd/a").read_text() == plain


def test_reclassed_to(tmp_path):
    write(tmp_path, "cell_misc/a/reclassed_to", f"r@{OLD}\nMASK@{OLD}\n")
    rename_mapset_references(str(tmp_path), OLD, NEW)
    assert (tmp_path / "cell_misc/a/reclassed_to").read_text() == \
        f"r@{NEW}\nMASK@{NEW}\n"


def test_subgroup_ref_and_target(tmp_path):
    write(tmp_path, "group/g/subgroup/s/REF", f"a {OLD}\nelevation PERMANENT\n")
    write(tmp_path, "group/g/TARGET", f"nc_spm_08\n{OLD}\n")
    rename_mapset_references(str(tmp_path), OLD, NEW)
    assert (tmp_path / "group/g/subgroup/s/REF").read_text() == \
        f"a {NEW}\nelevation PERMANENT\n"
    assert (tmp_path / "group/g/TARGET").read_text() == f"nc_spm_08\n{NEW}\n"


def test_database_paths_written_out_in_full(tmp_path):
    full = f"/tmp/gisdbase_x/nc_spm_08/{OLD}/sqlite/sqlite.db"
    write(tmp_path, "vector/p/dbln", f"1/p|p|{full}|cat|sqlite\n")
    write(tmp_path, "VAR", f"DB_DRIVER: sqlite\nDB_DATABASE: {full}\n")
    variable = "1/q|q|$GISDBASE/$LOCATION_NAME/$MAPSET/sqlite/sqlite.db|cat|sqlite\n"
    write(tmp_path, "vector/q/dbln", variable)
    rename_mapset_references(str(tmp_path), OLD, NEW)
    assert (tmp_path / "vector/p/dbln").read_text() == \
        "1/p|p|$GISDBASE/$LOCATION_NAME/$MAPSET/sqlite/sqlite.db|cat|sqlite\n"
    assert (tmp_path / "VAR").read_text().endswith(
        "DB_DATABASE: $GISDBASE/$LOCATION_NAME/$MAPSET/sqlite/sqlite.db\n")
    assert (tmp_path / "vector/q/dbln").read_text() == variable


def test_same_name_changes_nothing(tmp_path):
    write(tmp_path, "cellhd/r", f"reclass\nname: a\nmapset: {OLD}\n")
    assert rename_mapset_references(str(tmp_path), OLD, OLD) == []


class _Entry:
    """The two fields of a store entry the rewrite reads."""

    def __init__(self, obj, kind="f"):
        self.kind, self.obj = kind, obj


def test_with_the_restored_state_only_its_places_are_read(tmp_path,
                                                          monkeypatch):
    from actinia_resume_plugin.worker import mapset_names
    header = "proj: 99\nformat: -1\n"
    for name in ("a", "b", "c"):
        write(tmp_path, f"cellhd/{name}", header)  # one object, three files
    write(tmp_path, "cellhd/r", f"reclass\nname: a\nmapset: {OLD}\n")
    write(tmp_path, "cellhd/s", f"reclass\nname: a\nmapset: {OLD}\n")
    write(tmp_path, "cellhd/stray", f"reclass\nname: a\nmapset: {OLD}\n")
    entries = {"cellhd": _Entry("", "d"), "cellhd/a": _Entry("h"),
               "cellhd/b": _Entry("h"), "cellhd/c": _Entry("h"),
               "cellhd/r": _Entry("rc"), "cellhd/s": _Entry("rc")}
    opened = []
    real = mapset_names._rewrite
    monkeypatch.setattr(mapset_names, "_rewrite",
                        lambda path, change: opened.append(path)
                        or real(path, change))
    changed = rename_mapset_references(str(tmp_path), OLD, NEW, entries)
    # both reclass headers need the rewrite (each file is its own copy);
    # of the three plain headers (one object) only the first is read; a
    # file the state does not hold is not looked at
    assert sorted(changed) == ["cellhd/r", "cellhd/s"]
    assert sorted(os.path.basename(p) for p in opened) == ["a", "r", "s"]
    assert (tmp_path / "cellhd/stray").read_text().endswith(f"{OLD}\n")
