# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plugin's configuration: actinia's own config keys in one typed object.

Operators configure job resumption with the keys actinia's documentation
names (``[MISC] save_interim_results``, ``save_interim_results_endpoints_cfg``,
``include_additional_mapset_pattern``, ``[GRASS] grass_resource_dir``,
``grass_resource_quota``), so the plugin reads the very same file actinia
reads (``DEFAULT_CONFIG_PATH``). Plain Python: no Flask, no actinia imports.
"""

from __future__ import annotations

import configparser
import csv
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

# The actinia-core processing resources that can run a resumed job.
CORE_CLASSES = (
    "AsyncEphemeralResource",
    "AsyncEphemeralExportResource",
    "AsyncPersistentResource",
)
SAVE_MODES = (True, False, "onError")


class ConfigError(Exception):
    """A configuration the plugin cannot run with; raised at start-up."""


@dataclass(frozen=True)
class ResumeConfig:
    """Everything the plugin needs from actinia's config file."""

    save_interim_results: bool | str = False
    endpoints_cfg: str | None = None
    include_additional_mapset_pattern: str | None = None
    resource_dir: str = os.path.expanduser("~/actinia/resources")
    resource_quota_gb: int = 100
    interim_results_ttl_days: float | None = None
    # how often the retention thread looks for expired interim results
    interim_results_ttl_check_seconds: float = 600.0
    # a POST may reuse the caller's interim results of an earlier job
    # (``?reuse=``); off unless the operator opts in
    reuse_interim_results: bool = False
    # how often a job whose worker was lost is continued by itself
    # (continuation.py); 0: never, only a PUT resumes it
    continue_after_worker_loss: int = 3
    # failures of a job's own step that are continued too (opt-in; names
    # of continuation.TRANSIENT_FAILURES)
    continue_after_errors: tuple = ()
    # lower-case endpoint class name -> actinia-core class used to resume
    endpoint_map: dict[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        """Interim results are saved (``True`` or ``onError``)."""
        return self.save_interim_results in (True, "onError")

    @property
    def save_every_step(self) -> bool:
        return self.save_interim_results is True

    @property
    def resource_quota_bytes(self) -> int:
        return int(self.resource_quota_gb * 1024**3)

    def core_class_for(self, endpoint: str) -> str | None:
        """The core class that resumes jobs of ``endpoint`` (or None)."""
        return self.endpoint_map.get(endpoint.lower().replace("_locations", ""))


def parse_save_mode(value: str) -> bool | str:
    """``True``/``False``/``onError`` exactly as actinia documents them."""
    text = value.strip()
    if text.lower() == "true":
        return True
    if text.lower() in ("false", ""):
        return False
    if text.lower() == "onerror":
        return "onError"
    raise ConfigError(
        f"[MISC] save_interim_results = {value!r}: expected True, onError "
        "or False"
    )


def parse_flag(value: str, name: str = "value") -> bool:
    """``True``/``False`` (also yes/no, on/off, 1/0), as configparser."""
    text = value.strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0", ""):
        return False
    raise ValueError(f"{name} = {value!r}: expected True or False")


def default_endpoint_map() -> dict[str, str]:
    """actinia-core's three resumable endpoints resume with themselves."""
    return {name.lower(): name for name in CORE_CLASSES}


def load_endpoints_csv(path: str) -> dict[str, str]:
    """Parse ``PluginEndpointClass;CoreEndpointClass`` rows.

    actinia-core silently skips rows it cannot read; an operator then wonders
    why a plugin endpoint cannot be resumed. We fail loudly instead, naming
    the file and the line, so the mistake shows at start-up.
    """
    if not os.path.isfile(path):
        raise ConfigError(
            f"save_interim_results_endpoints_cfg: file {path} does not exist"
        )
    mapping: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for lineno, row in enumerate(csv.reader(handle, delimiter=";"), 1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if row[0].lstrip().startswith("#"):
                continue
            if len(row) != 2:
                raise ConfigError(
                    f"{path}:{lineno}: expected 2 columns "
                    f"'PluginEndpointClass;CoreEndpointClass', got {len(row)}"
                )
            plugin_class, core_class = (cell.strip() for cell in row)
            if not plugin_class.isidentifier():
                raise ConfigError(
                    f"{path}:{lineno}: {plugin_class!r} is not a class name"
                )
            if core_class not in CORE_CLASSES:
                raise ConfigError(
                    f"{path}:{lineno}: unknown core class {core_class!r}; "
                    f"expected one of {', '.join(CORE_CLASSES)}"
                )
            mapping[plugin_class.lower()] = core_class
    if not mapping:
        raise ConfigError(f"{path}: no endpoint rows found (empty file)")
    return mapping


def read_config(path: str | os.PathLike) -> ResumeConfig:
    """Read actinia's config file into a :class:`ResumeConfig`."""
    parser = configparser.ConfigParser()
    with open(path, encoding="utf-8") as handle:
        parser.read_file(handle)

    def get(section: str, key: str, default=None):
        if parser.has_option(section, key):
            return parser.get(section, key)
        return default

    mode = parse_save_mode(get("MISC", "save_interim_results", "False"))
    endpoints_cfg = get("MISC", "save_interim_results_endpoints_cfg")
    endpoint_map = default_endpoint_map()
    if endpoints_cfg and endpoints_cfg.strip():
        endpoint_map.update(load_endpoints_csv(endpoints_cfg.strip()))
    ttl = get("MISC", "interim_results_ttl_days")
    try:
        ttl_days = float(ttl) if ttl not in (None, "", "off") else None
        ttl_check = float(
            get("MISC", "interim_results_ttl_check_seconds", "600"))
        quota = int(get("GRASS", "grass_resource_quota", "100"))
        reuse = parse_flag(get("MISC", "reuse_interim_results", "False"),
                           "[MISC] reuse_interim_results")
        continuations = int(get("MISC", "continue_after_worker_loss", "3"))
        transient = tuple(
            word.strip() for word in
            (get("MISC", "continue_after_errors", "") or "").split(",")
            if word.strip())
        unknown = sorted(set(transient) - {"killed"})
        if unknown:
            raise ValueError(
                f"[MISC] continue_after_errors: unknown {', '.join(unknown)}"
                "; known: killed")
        if not 0 <= continuations <= 100:
            raise ValueError(
                f"[MISC] continue_after_worker_loss = {continuations}: "
                "expected a whole number 0 ... 100")
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return ResumeConfig(
        save_interim_results=mode,
        endpoints_cfg=endpoints_cfg,
        include_additional_mapset_pattern=(
            get("MISC", "include_additional_mapset_pattern") or None
        ),
        resource_dir=get(
            "GRASS", "grass_resource_dir", ResumeConfig.resource_dir
        ),
        resource_quota_gb=quota,
        interim_results_ttl_days=ttl_days,
        interim_results_ttl_check_seconds=ttl_check,
        reuse_interim_results=reuse,
        continue_after_worker_loss=continuations,
        continue_after_errors=transient,
        endpoint_map=endpoint_map,
    )


def actinia_config_path() -> Path:
    """The file actinia reads: ``$DEFAULT_CONFIG_PATH`` or its default."""
    return Path(os.environ.get("DEFAULT_CONFIG_PATH", "/etc/default/actinia"))


_loaded: ResumeConfig | None = None


def current_config(fresh: bool = False) -> ResumeConfig:
    """The config of this process, read once, as actinia reads its own
    (``create_endpoints`` reads it at start-up, so a broken file stops
    actinia there instead of failing requests later).

    ``fresh``: with ``[MISC] save_interim_results`` read anew from the file,
    as actinia-core reads it on every PUT (``rest/resource_management.py``)
    and in every job (``core/interim_results.py``): an operator who switches
    modes sees the same as with the built-in, without a restart. The other
    keys stay those of start-up (they are checked there). A file that cannot
    be read keeps the start-up value."""
    global _loaded
    if _loaded is None:
        path = actinia_config_path()
        _loaded = read_config(path) if path.exists() else ResumeConfig()
    if not fresh:
        return _loaded
    mode = read_save_mode(actinia_config_path(), _loaded.save_interim_results)
    if mode == _loaded.save_interim_results:
        return _loaded
    return replace(_loaded, save_interim_results=mode)


def read_save_mode(path: str | os.PathLike,
                   default: bool | str) -> bool | str:
    """``[MISC] save_interim_results`` of the file at ``path`` (a small ini
    file: cheap to read per request); ``default`` when the file or the
    value cannot be read."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
        if not parser.has_option("MISC", "save_interim_results"):
            return False
        return parse_save_mode(parser.get("MISC", "save_interim_results"))
    except (OSError, ConfigError, configparser.Error):
        return default


def retention_settings() -> tuple[float | None, float]:
    """``(interim_results_ttl_days, interim_results_ttl_check_seconds)``
    read anew from the file: the retention thread re-reads only its own two
    keys each round, so an operator can switch retention on or off without
    a restart (documented in the README). Unreadable values keep the
    settings of start-up."""
    loaded = current_config()
    try:
        fresh = read_config(actinia_config_path())
    except (OSError, ConfigError, configparser.Error):
        fresh = loaded
    return fresh.interim_results_ttl_days, \
        fresh.interim_results_ttl_check_seconds
