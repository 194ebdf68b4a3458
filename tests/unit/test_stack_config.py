# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""scripts/stack.py renders the GRASS paths of the installed GRASS into
actinia's config (no GRASS version is written into the template)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import stack


def test_template_names_no_grass_version():
    lines = (stack.REPO / "config" / "actinia.cfg.template").read_text()
    settings = [line for line in lines.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert [line for line in settings if "grass8" in line
            or "/usr/lib/grass" in line or "/usr/bin/grass" in line] == []
    assert "grass_gis_base = ${GRASS_GIS_BASE}" in settings


def test_rendered_config_uses_the_installed_grass(tmp_path):
    opts = stack.build_parser().parse_args(
        ["start", "--data", str(tmp_path), "--port", "1", "--valkey-port", "2"])
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(stack.render_config(tmp_path, opts))
    grass = shutil.which("grass")
    base = subprocess.run([grass, "--config", "path"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert cfg["GRASS"]["grass_gis_base"] == base
    assert cfg["GRASS"]["grass_gis_start_script"] == grass
    xml = Path(cfg["GRASS"]["grass_modules_xml_path"])
    assert xml == Path(base, "gui", "wxpython", "xml", "module_items.xml")
    assert xml.is_file(), "grass-gui (module_items.xml) is not installed"
    assert Path(base, "bin", "g.mapset").exists()
