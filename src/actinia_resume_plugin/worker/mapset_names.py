# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""Mapset names GRASS writes into a mapset, rewritten after a restore.

An ephemeral job runs in a temporary mapset with a new random name in
every iteration. An interim result restored into the next iteration's
temporary mapset keeps the old name wherever GRASS wrote it. actinia's
``change_mapsetname`` (used by the worker for ``group``, ``cell_misc`` VRTs
and ``tgis``) covers group ``REF`` files, raster VRTs and the temporal
database; this module covers the rest GRASS 8.2–8.4 writes:

* ``cellhd/<map>`` of a reclass map (``r.reclass``, and ``MASK`` made by
  ``r.mask``): ``mapset: <base map's mapset>``;
* ``cell_misc/<base>/reclassed_to``: ``<reclass map>@<mapset>`` per line;
* ``group/<g>/subgroup/<s>/REF`` (``i.group subgroup=``): ``<map> <mapset>``;
* ``group/<g>/TARGET``: the target project and mapset of a group;
* ``vector/<map>/dbln`` and ``VAR``: a database path written out in full
  (``…/<project>/<mapset>/sqlite/sqlite.db`` instead of the usual
  ``$GISDBASE/$LOCATION_NAME/$MAPSET/…``) becomes the variable form again.

Other places that hold a mapset name hold one that is not the temporary
mapset's (``colr2/<mapset>/`` names *other* mapsets) or are history text
(``hist/<map>``), which GRASS never reads back to find data.

Plain Python, no actinia imports.
"""

from __future__ import annotations

import os
import re

__all__ = ["rename_mapset_references"]

_VARIABLE_DB_PREFIX = "$GISDBASE/$LOCATION_NAME/$MAPSET/"


def _rewrite(path: str, change) -> bool | None:
    """Apply ``change`` (text -> text) to a small text file; a new file is
    renamed into place (the restored copy is the job's own). Returns
    whether the file changed, ``None`` when there is no such file."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    new = change(text)
    if new == text:
        return False
    tmp = f"{path}.rename-{os.getpid()}"
    st = os.stat(path)
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(new)
    os.chmod(tmp, st.st_mode & 0o7777)
    os.replace(tmp, path)
    return True


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _reclass_header(old: str, new: str):
    def change(text: str) -> str:
        if not text.startswith("reclass"):
            return text
        return re.sub(rf"(?m)^(mapset:[ \t]*){re.escape(old)}[ \t]*$",
                      lambda m: m.group(1) + new, text)
    return change


def _at_mapset_lines(old: str, new: str):
    def change(text: str) -> str:
        return re.sub(rf"(?m)@{re.escape(old)}[ \t]*$", "@" + new, text)
    return change


def _ref_lines(old: str, new: str):
    """``<map> <mapset>`` per line (group and subgroup REF)."""
    def change(text: str) -> str:
        return re.sub(rf"(?m)^(\S+[ \t]+){re.escape(old)}[ \t]*$",
                      lambda m: m.group(1) + new, text)
    return change


def _target(old: str, new: str):
    """``TARGET``: project on the first line, mapset on the second."""
    def change(text: str) -> str:
        lines = text.split("\n")
        if len(lines) > 1 and lines[1].strip() == old:
            lines[1] = new
        return "\n".join(lines)
    return change


def _full_db_paths(old: str):
    """A database path written out in full, in the old mapset, becomes
    ``$GISDBASE/$LOCATION_NAME/$MAPSET/…`` (which GRASS expands to the
    current mapset)."""
    pattern = re.compile(rf"(?<![\w$])/[^|\n]*?/{re.escape(old)}/")

    def change(text: str) -> str:
        return pattern.sub(_VARIABLE_DB_PREFIX, text)
    return change


#: The places of the module docstring as patterns of a path relative to
#: the mapset, each with the kind of rewrite it needs.
_PLACES = (
    (re.compile(r"cellhd/[^/]+"), "reclass"),
    (re.compile(r"cell_misc/[^/]+/reclassed_to"), "at_mapset"),
    (re.compile(r"group/[^/]+/TARGET"), "target"),
    (re.compile(r"group/[^/]+/subgroup/[^/]+/REF"), "ref"),
    (re.compile(r"vector/[^/]+/dbln"), "full_db"),
    (re.compile(r"VAR"), "full_db"),
)


def _changes(old: str, new: str) -> dict:
    return {"reclass": _reclass_header(old, new),
            "at_mapset": _at_mapset_lines(old, new),
            "target": _target(old, new), "ref": _ref_lines(old, new),
            "full_db": _full_db_paths(old)}


def _places_on_disk(mapset_path: str) -> list[tuple[str, str]]:
    """``(rel, kind)`` of every place that exists or may exist below
    ``mapset_path`` (listed from the dirs; a missing file is skipped when
    it is opened)."""
    places = [(f"cellhd/{name}", "reclass")
              for name in _listdir(os.path.join(mapset_path, "cellhd"))]
    places += [(f"cell_misc/{name}/reclassed_to", "at_mapset")
               for name in _listdir(os.path.join(mapset_path, "cell_misc"))]
    for group in _listdir(os.path.join(mapset_path, "group")):
        places.append((f"group/{group}/TARGET", "target"))
        places += [(f"group/{group}/subgroup/{sub}/REF", "ref")
                   for sub in _listdir(os.path.join(
                       mapset_path, "group", group, "subgroup"))]
    places += [(f"vector/{name}/dbln", "full_db")
               for name in _listdir(os.path.join(mapset_path, "vector"))]
    places.append(("VAR", "full_db"))
    return places


#: What a place's relative path starts or ends with (a cheap first test:
#: a mapset of 10,000 rasters has 100,000 paths, a few hundred places).
_PLACE_STARTS = ("cellhd/", "VAR")
_PLACE_ENDS = ("/reclassed_to", "/TARGET", "/REF", "/dbln")


def _places_in(entries: dict) -> list[tuple[str, str]]:
    """``(rel, kind)`` of the files and symlinks of ``entries`` (a
    mapset's state, ``{rel: Entry}``) that are one of the places."""
    places = []
    for rel in entries:
        if not (rel.startswith(_PLACE_STARTS) or rel.endswith(_PLACE_ENDS)):
            continue
        if entries[rel].kind == "d":
            continue
        for pattern, kind in _PLACES:
            if pattern.fullmatch(rel):
                places.append((rel, kind))
                break
    return sorted(places)


def rename_mapset_references(mapset_path: str, old: str, new: str,
                             entries: dict | None = None) -> list[str]:
    """Rewrite the mapset name ``old`` into ``new`` in the places listed in
    the module docstring, below the mapset dir ``mapset_path``. Returns
    the paths changed (relative to ``mapset_path``).

    ``entries``: the state the mapset was just restored or adopted as
    (``{rel: Entry}``; every file holds the bytes of its object). Then only
    the places that state holds are opened, and of files that hold the
    same object only one is read unless it needs a rewrite: the others
    hold the same bytes, so the same answer. (10,000 rasters of one
    region share one ``cellhd`` object: one read, not 10,000.)"""
    if not old or old == new:
        return []
    changes = _changes(old, new)
    places = (_places_on_disk(mapset_path) if entries is None
              else _places_in(entries))
    unchanged: set = set()  # (kind, object) read and needing no rewrite
    changed = []
    for rel, kind in places:
        item = entries.get(rel) if entries is not None else None
        obj = (kind, item.obj) if item is not None and item.kind == "f" \
            and item.obj else None
        if obj in unchanged:
            continue
        done = _rewrite(os.path.join(mapset_path, rel), changes[kind])
        if done:
            changed.append(rel)
        elif done is False and obj is not None:
            unchanged.add(obj)
    return changed
