# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The endpoints CSV (save_interim_results_endpoints_cfg): every malformed
file fails at start-up with a message naming the file and the line."""

from __future__ import annotations

import os
import tempfile
from types import SimpleNamespace

import pytest

from actinia_resume_plugin.config import (
    ConfigError,
    ResumeConfig,
    default_endpoint_map,
    load_endpoints_csv,
    read_config,
)

GOOD = ("GdiAsyncEphemeralExportResource;AsyncEphemeralExportResource\n"
        "GdiAsyncPersistentResource;AsyncPersistentResource\n")


def write(tmp_path, text, name="endpoints.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_good_csv_maps_lower_case_plugin_classes(tmp_path):
    path = write(tmp_path, "# plugin;core\n\n" + GOOD)
    assert load_endpoints_csv(path) == {
        "gdiasyncephemeralexportresource": "AsyncEphemeralExportResource",
        "gdiasyncpersistentresource": "AsyncPersistentResource",
    }


def test_missing_file_names_the_file(tmp_path):
    path = str(tmp_path / "nope.csv")
    with pytest.raises(ConfigError, match=f"{path} does not exist"):
        load_endpoints_csv(path)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n\n"])
def test_empty_file_names_the_file(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_endpoints_csv(path)
    assert str(info.value) == f"{path}: no endpoint rows found (empty file)"


@pytest.mark.parametrize("row, got", [
    ("GdiAsyncPersistentResource", 1),
    ("GdiAsyncPersistentResource;AsyncPersistentResource;extra", 3),
    ("GdiAsyncPersistentResource,AsyncPersistentResource", 1),
])
def test_wrong_column_count_names_file_and_line(tmp_path, row, got):
    path = write(tmp_path, f"{GOOD}\n{row}\n")
    with pytest.raises(ConfigError) as info:
        load_endpoints_csv(path)
    assert str(info.value).startswith(f"{path}:4: expected 2 columns")
    assert str(info.value).endswith(f"got {got}")


def test_unknown_core_class_names_file_line_and_class(tmp_path):
    path = write(tmp_path, "GdiAsyncPersistentResource;AsyncPersistant\n")
    with pytest.raises(ConfigError) as info:
        load_endpoints_csv(path)
    message = str(info.value)
    assert message.startswith(f"{path}:1: unknown core class 'AsyncPersistant'")
    assert "AsyncPersistentResource" in message  # lists the valid ones


def test_plugin_class_that_is_no_class_name(tmp_path):
    path = write(tmp_path, GOOD + "Gdi Async;AsyncPersistentResource\n")
    with pytest.raises(ConfigError, match=f"{path}:3: 'Gdi Async' is not"):
        load_endpoints_csv(path)


def actinia_cfg(tmp_path, csv_path, mode="onError"):
    cfg = tmp_path / "actinia.cfg"
    cfg.write_text(
        "[MISC]\n"
        f"save_interim_results = {mode}\n"
        f"save_interim_results_endpoints_cfg = {csv_path}\n"
        "include_additional_mapset_pattern = test_tmp_*\n"
        "[GRASS]\n"
        f"grass_resource_dir = {tmp_path}/resources\n")
    return cfg


def test_read_config_merges_csv_with_core_classes(tmp_path):
    cfg = read_config(actinia_cfg(tmp_path, write(tmp_path, GOOD)))
    assert cfg.save_interim_results == "onError"
    assert cfg.include_additional_mapset_pattern == "test_tmp_*"
    for core in default_endpoint_map().values():
        assert cfg.core_class_for(core.lower()) == core
    assert (cfg.core_class_for("gdiasyncpersistentresource_locations")
            == "AsyncPersistentResource")
    assert cfg.core_class_for("asyncephemeralresource_locations") == (
        "AsyncEphemeralResource")
    assert cfg.core_class_for("somethingelse") is None


def test_read_config_fails_on_malformed_csv(tmp_path):
    csv_path = write(tmp_path, "GdiAsyncPersistentResource\n")
    with pytest.raises(ConfigError, match=f"{csv_path}:1: expected 2"):
        read_config(actinia_cfg(tmp_path, csv_path))


def test_read_config_fails_on_missing_csv(tmp_path):
    csv_path = str(tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match=f"{csv_path} does not exist"):
        read_config(actinia_cfg(tmp_path, csv_path))


# ------------------------------------------------- endpoints at start-up
@pytest.fixture(scope="module")
def endpoints():
    """actinia_resume_plugin.endpoints (imports actinia_core, which reads
    and may create $DEFAULT_CONFIG_PATH at import: keep it in a temp dir)."""
    if "DEFAULT_CONFIG_PATH" not in os.environ:
        tmp = tempfile.mkdtemp(prefix="resume-unit-")
        os.environ["DEFAULT_CONFIG_PATH"] = os.path.join(tmp, "actinia.cfg")
    from actinia_resume_plugin import endpoints as module
    return module


REGISTERED = {"gdiasyncephemeralexportresource", "gdiasyncpersistentresource",
              "asyncpersistentresource", "asyncpersistentresource_locations"}


def test_csv_rows_become_our_module_plugin_resources(tmp_path, endpoints):
    from actinia_resume_plugin.api.module_plugin import (
        ResumableGdiEphemeralExportResource,
        ResumableGdiPersistentResource,
    )
    cfg = read_config(actinia_cfg(tmp_path, write(tmp_path, GOOD)))
    found = endpoints.plugin_endpoints(REGISTERED, cfg)
    assert found["gdiasyncephemeralexportresource"] is (
        ResumableGdiEphemeralExportResource)
    assert found["gdiasyncpersistentresource"] is (
        ResumableGdiPersistentResource)
    assert "gdiasyncpersistentresource_locations" not in found
    assert found["asyncpersistentresource_locations"].__name__ == (
        "ResumablePersistentResource")


def test_unregistered_plugin_class_names_file_and_line(tmp_path, endpoints):
    csv_path = write(tmp_path, GOOD + "\nOtherPluginResource;"
                     "AsyncPersistentResource\n")
    cfg = read_config(actinia_cfg(tmp_path, csv_path))
    with pytest.raises(ConfigError) as info:
        endpoints.plugin_endpoints(REGISTERED, cfg)
    message = str(info.value)
    assert message.startswith(f"{csv_path}:4: 'otherpluginresource' is not "
                              "an endpoint registered in actinia")
    assert "before actinia_resume_plugin" in message


def test_registered_class_without_resumable_variant(tmp_path, endpoints):
    csv_path = write(tmp_path, "OtherPluginResource;AsyncPersistentResource\n")
    cfg = read_config(actinia_cfg(tmp_path, csv_path))
    with pytest.raises(ConfigError, match=f"{csv_path}:1: .* no resumable "
                       "variant of endpoint 'otherpluginresource'"):
        endpoints.plugin_endpoints(REGISTERED | {"otherpluginresource"}, cfg)


def test_core_class_that_does_not_match_the_endpoint(tmp_path, endpoints):
    csv_path = write(tmp_path, "GdiAsyncPersistentResource;"
                     "AsyncEphemeralExportResource\n")
    cfg = read_config(actinia_cfg(tmp_path, csv_path))
    with pytest.raises(ConfigError, match=f"{csv_path}:1: .* runs "
                       "AsyncPersistentResource jobs"):
        endpoints.plugin_endpoints(REGISTERED, cfg)


def test_create_endpoints_exits_with_boot_error(monkeypatch, capsys,
                                                endpoints):
    def broken():
        raise ConfigError("/etc/x.csv:7: expected 2 columns")

    monkeypatch.setattr(endpoints, "current_config", broken)
    api = SimpleNamespace(app=SimpleNamespace(view_functions={}))
    with pytest.raises(SystemExit) as info:
        endpoints.create_endpoints(api)
    assert info.value.code == endpoints.WORKER_BOOT_ERROR == 3
    assert ("actinia_resume_plugin: configuration error: /etc/x.csv:7: "
            "expected 2 columns") in capsys.readouterr().err


def test_config_without_csv_resumes_core_classes_only():
    cfg = ResumeConfig(save_interim_results=True,
                       endpoint_map=default_endpoint_map())
    assert cfg.core_class_for("gdiasyncpersistentresource") is None


def test_reuse_interim_results_is_off_unless_set(tmp_path):
    """[MISC] reuse_interim_results: opt-in; a typo stops start-up."""
    cfg_path = actinia_cfg(tmp_path, write(tmp_path, GOOD))
    assert read_config(cfg_path).reuse_interim_results is False
    text = cfg_path.read_text().replace(
        "[GRASS]", "reuse_interim_results = True\n[GRASS]")
    cfg_path.write_text(text)
    assert read_config(cfg_path).reuse_interim_results is True
    cfg_path.write_text(text.replace("= True\n[GRASS]", "= maybe\n[GRASS]"))
    with pytest.raises(ConfigError, match="reuse_interim_results"):
        read_config(cfg_path)


# ------------------------------------------ save_interim_results read anew
def test_fresh_config_reads_save_mode_anew(tmp_path, monkeypatch):
    """As actinia reads it on every PUT and in every job: a changed file
    changes the mode without a restart; the other keys stay as loaded."""
    from actinia_resume_plugin import config as cfg

    path = tmp_path / "actinia.cfg"
    path.write_text("[MISC]\nsave_interim_results = False\n"
                    "[GRASS]\ngrass_resource_dir = /srv/res\n")
    monkeypatch.setenv("DEFAULT_CONFIG_PATH", str(path))
    monkeypatch.setattr(cfg, "_loaded", None)
    assert cfg.current_config().save_interim_results is False
    for text, mode in (("True", True), ("onError", "onError"),
                       ("False", False)):
        path.write_text(f"[MISC]\nsave_interim_results = {text}\n"
                        "[GRASS]\ngrass_resource_dir = /elsewhere\n")
        fresh = cfg.current_config(fresh=True)
        assert fresh.save_interim_results == mode
        assert fresh.resource_dir == "/srv/res"
    # not fresh: the value of start-up
    path.write_text("[MISC]\nsave_interim_results = True\n")
    assert cfg.current_config().save_interim_results is False
    # unreadable: the value of start-up
    path.write_text("[MISC]\nsave_interim_results = maybe\n")
    assert cfg.current_config(fresh=True).save_interim_results is False
    path.unlink()
    assert cfg.current_config(fresh=True).save_interim_results is False
    # the key missing: actinia's default, False
    path.write_text("[MISC]\n")
    monkeypatch.setattr(cfg, "_loaded", None)
    path.write_text("[MISC]\nsave_interim_results = True\n")
    assert cfg.current_config().save_interim_results is True
    path.write_text("[MISC]\n")
    assert cfg.current_config(fresh=True).save_interim_results is False
