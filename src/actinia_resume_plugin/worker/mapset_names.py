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


def _rewrite(path: str, change) -> bool:
    """Apply ``change`` (text -> text) to a small text file; a new file is
    renamed into place (the restored copy is the job's own). Returns
    whether the file changed."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False
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


def rename_mapset_references(mapset_path: str, old: str, new: str) -> list[str]:
    """Rewrite the mapset name ``old`` into ``new`` in the places listed in
    the module docstring, below the mapset dir ``mapset_path``. Returns
    the paths changed (relative to ``mapset_path``)."""
    if not old or old == new:
        return []
    changed = []

    def apply(rel: str, change) -> None:
        if _rewrite(os.path.join(mapset_path, rel), change):
            changed.append(rel)

    for name in _listdir(os.path.join(mapset_path, "cellhd")):
        apply(f"cellhd/{name}", _reclass_header(old, new))
    for name in _listdir(os.path.join(mapset_path, "cell_misc")):
        apply(f"cell_misc/{name}/reclassed_to", _at_mapset_lines(old, new))
    for group in _listdir(os.path.join(mapset_path, "group")):
        apply(f"group/{group}/TARGET", _target(old, new))
        for sub in _listdir(os.path.join(mapset_path, "group", group,
                                         "subgroup")):
            apply(f"group/{group}/subgroup/{sub}/REF", _ref_lines(old, new))
    for name in _listdir(os.path.join(mapset_path, "vector")):
        apply(f"vector/{name}/dbln", _full_db_paths(old))
    apply("VAR", _full_db_paths(old))
    return changed
