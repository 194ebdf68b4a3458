# SPDX-FileCopyrightText: 2026 actinia-resume-plugin developers
# SPDX-License-Identifier: GPL-3.0-or-later
"""The actinia hooks the plugin lives on, pinned: every actinia method we
override or call (by name and ``inspect.signature``) and every actinia
attribute we read or set. An actinia upgrade that renames or reshapes one
fails here in seconds, naming the hook, instead of in the real-stack suite
or in production. When one fails: read the new actinia code, adapt ours,
then the pin.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

from actinia_resume_plugin.api import processing as api_processing
from actinia_resume_plugin.api.resource_storage import ResourceStorageResource
from actinia_resume_plugin.api.resume import ResumeResourceManager
from actinia_resume_plugin.worker import processing as worker

try:
    from actinia_resume_plugin.api import module_plugin
except ImportError:  # actinia-module-plugin is not installed
    module_plugin = None

from .hooks_ast import (
    actinia_attributes,
    actinia_part,
    actinia_reads,
    attributes_we_bind,
    attributes_we_touch,
    optional_attributes_we_touch,
)

#: The methods of actinia_processing_lib that InterimResultsMixin overrides.
WORKER_OVERRIDES = {
    "__init__": "(self, rdc)",
    "run": "(self)",
    "_setup": "(self, init_grass=True)",
    "_cleanup": "(self)",
    "_validate_process_chain": "(self, process_chain=None, "
                               "skip_permission_check=False, "
                               "old_process_chain=None, pc_step=None)",
    "_execute_process_list": "(self, process_list)",
    "_create_temp_database": "(self, mapsets=None)",
    "_create_temporary_mapset": "(self, temp_mapset_name, "
                                "source_mapset_name=None, "
                                "interim_result_mapset=None, "
                                "interim_result_file_path=None)",
    "_interim_results": "(self)",
    "_send_to_database": "(self, document, final=False)",
}
WORKER_CLASSES = [worker.ResumableEphemeralProcessing,
                  worker.ResumableEphemeralProcessingWithExport,
                  worker.ResumablePersistentProcessing]
_STATUS_URL = {"get": "(self, user_id, resource_id)",
               "put": "(self, user_id, resource_id)",
               "delete": "(self, user_id, resource_id)"}
#: Our resources: the actinia methods each overrides.
RESOURCE_OVERRIDES = {
    ResumeResourceManager: _STATUS_URL,
    ResourceStorageResource: {"get": "(self)", "delete": "(self)"},
    api_processing.ResumableEphemeralResource: {"post": "(self, project_name)"},
    api_processing.ResumableEphemeralExportResource: {
        "post": "(self, project_name)"},
    api_processing.ResumablePersistentResource: {
        "post": "(self, project_name, mapset_name)"},
}
if module_plugin:
    RESOURCE_OVERRIDES.update({
        module_plugin.ResumableGdiEphemeralExportResource: {
            "post": "(self, project_name)"},
        module_plugin.ResumableGdiPersistentResource: {
            "post": "(self, project_name, mapset_name)"},
    })
#: What we call, ``module:qualified name`` -> signature.
CALLED = {
    "actinia_core.core.common.kvdb_interface:enqueue_job":
        "(timeout, func, *args, queue_type_overwrite=None)",
    "actinia_core.core.mapset_merge_utils:change_mapsetname":
        "(source_path, directory, source_mapset, target_mapset, "
        "target_path=None)",
    "actinia_rest_lib.endpoint_config:check_endpoint":
        "(method, api_doc=None, endpoint_class=None)",
    "actinia_core.core.common.user:ActiniaUser.read_from_db": "(self)",
    "actinia_core.core.common.user:ActiniaUser.exists": "(self)",
    "actinia_core.core.resources_logger:ResourceLogger.__init__":
        "(self, host, port, password=None, config=None, user_id=None, "
        "fluent_sender=None)",
    "actinia_core.core.resources_logger:ResourceLogger.get":
        "(self, user_id, resource_id, iteration=None)",
    "actinia_core.core.resources_logger:ResourceLogger.commit":
        "(self, user_id, resource_id, iteration, document, "
        "expiration=8640000)",
    "actinia_core.core.resources_logger:ResourceLogger.commit_termination":
        "(self, user_id, resource_id, iteration=None, expiration=3600)",
    "actinia_core.rest.resource_management:ResourceManagerBase."
    "check_permissions": "(self, user_id)",
    "actinia_core.core.resource_data_container:ResourceDataContainer."
    "set_storage_model_to_file": "(self)",
    "actinia_rest_lib.resource_base:ResourceBase.preprocess":
        "(self, has_json=True, has_xml=False, project_name=None, "
        "mapset_name=None, map_name=None, process_chain_list=None)",
    "flask_restful:Api.mediatypes_method": "(self)",
    "flask_restful:Api.output": "(self, resource)",
    "flask_restful_swagger_2:Api.get_swagger_doc": "(self)",
    "flask.views:View.as_view": "(name, *class_args, **class_kwargs)",
}
if module_plugin:
    CALLED["actinia_module_plugin.api.processing:"
           "preprocess_build_pc_and_enqueue"] = (
        "(self, preprocess_kwargs, start_job)")
#: Attributes of actinia objects we set, ``class path:attribute`` -> the
#: access in actinia's processing code that makes setting it work.
SET_ON_ACTINIA = {
    "actinia_core.core.interim_results:InterimResult.saving_interim_results":
        "self.interim_result.saving_interim_results",
    "actinia_core.core.resource_data_container:ResourceDataContainer."
    "iteration": "self.rdc.iteration",
}


#: actinia attributes of the processing object that we set on purpose, with
#: why (any other binding of an actinia name would clobber it by accident).
OURS_ON_PURPOSE = {
    "number_of_processes": "actinia's progress counts the processes to run; "
                           "the steps a resumed iteration skips are not run",
}


def shown(obj) -> str:
    """The signature without annotations (they change nothing at runtime)."""
    sig = inspect.signature(obj)
    return str(sig.replace(
        parameters=[p.replace(annotation=p.empty)
                    for p in sig.parameters.values()],
        return_annotation=sig.empty))


def resolve(path: str):
    module, _, qualname = path.partition(":")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def replaced(cls: type) -> type:
    """The actinia class whose methods ours stand in for: the view a
    resource replaces (``replaces``), else the actinia base class."""
    return getattr(cls, "replaces", None) or actinia_part(cls)


def overrides():
    for cls in WORKER_CLASSES:
        yield from ((cls, name, sig) for name, sig in WORKER_OVERRIDES.items())
    for cls, methods in RESOURCE_OVERRIDES.items():
        yield from ((cls, name, sig) for name, sig in methods.items())


@pytest.mark.parametrize("cls, name, pinned", [
    pytest.param(c, n, s, id=f"{c.__name__}.{n}") for c, n, s in overrides()])
def test_overridden_actinia_method_is_unchanged(cls, name, pinned):
    base = replaced(cls)
    hook = f"{base.__module__}.{base.__name__}.{name}"
    assert hasattr(base, name), f"actinia hook {hook} is gone ({cls.__name__} overrides it)"
    assert shown(getattr(base, name)) == pinned, (
        f"actinia hook {hook} changed its signature "
        f"(pinned {pinned}, now {shown(getattr(base, name))})")


@pytest.mark.parametrize("cls", WORKER_CLASSES + list(RESOURCE_OVERRIDES),
                         ids=lambda c: c.__name__)
def test_every_override_is_pinned(cls):
    """A method of ours that shadows an actinia one must be in the pins."""
    pinned = WORKER_OVERRIDES if cls in WORKER_CLASSES else RESOURCE_OVERRIDES[cls]
    base = actinia_part(cls)
    ours = {name for klass in cls.__mro__[:cls.__mro__.index(base)]
            for name, value in vars(klass).items() if inspect.isfunction(value)}
    unpinned = sorted(n for n in ours if n not in pinned and (
        hasattr(base, n) or hasattr(replaced(cls), n)))
    assert not unpinned, f"{cls.__name__} overrides unpinned actinia hooks {unpinned}"


@pytest.mark.parametrize("path, pinned", CALLED.items(), ids=list(CALLED))
def test_called_actinia_function_is_unchanged(path, pinned):
    try:
        obj = resolve(path)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"actinia hook {path} is gone: {exc}")
    assert shown(obj) == pinned, (
        f"actinia hook {path} changed its signature (pinned {pinned}, "
        f"now {shown(obj)})")


@pytest.mark.parametrize("cls", WORKER_CLASSES + list(RESOURCE_OVERRIDES),
                         ids=lambda c: c.__name__)
def test_actinia_attributes_we_touch_exist(cls):
    missing = sorted(attributes_we_touch(cls) - actinia_attributes(cls))
    assert not missing, (
        f"{cls.__name__} uses actinia attributes that "
        f"{actinia_part(cls).__name__} no longer has: {missing}")


@pytest.mark.parametrize("cls", WORKER_CLASSES + list(RESOURCE_OVERRIDES),
                         ids=lambda c: c.__name__)
def test_our_attributes_do_not_overwrite_actinia_ones(cls):
    """An attribute actinia adds under a name we use would be clobbered."""
    clash = sorted(attributes_we_bind(cls) & actinia_attributes(cls)
                   - set(OURS_ON_PURPOSE))
    assert not clash, f"{cls.__name__} binds attributes actinia has: {clash}"


def test_actinia_attributes_we_look_up_with_a_default_exist_somewhere():
    defined = set().union(*(actinia_attributes(c) for c in WORKER_CLASSES))
    wanted = optional_attributes_we_touch(worker.InterimResultsMixin)
    assert wanted and not wanted - defined, sorted(wanted - defined)


def test_the_api_attributes_replace_view_uses_exist():
    """endpoints.replace_view builds views as flask-restful does."""
    import flask_restful_swagger_2

    assert {"app", "decorators"} <= actinia_attributes(flask_restful_swagger_2.Api)


@pytest.mark.skipif(module_plugin is None,
                    reason="actinia-module-plugin is not installed")
def test_what_the_pctemplates_workaround_sets_exists():
    from actinia_module_plugin.resources.config import PCTEMPLATECONFIG
    from actinia_module_plugin.resources.templating import pcTplEnv

    assert isinstance(PCTEMPLATECONFIG.pathfile, str), "PCTEMPLATECONFIG.pathfile"
    assert hasattr(pcTplEnv, "loader") and hasattr(pcTplEnv, "cache"), "pcTplEnv"


@pytest.mark.parametrize("path, access", SET_ON_ACTINIA.items(),
                         ids=list(SET_ON_ACTINIA))
def test_attributes_we_set_are_still_read_by_actinia(path, access):
    cls_path, _, attribute = path.rpartition(".")
    owner = resolve(cls_path)
    assert attribute in actinia_attributes(owner), (
        f"actinia hook {path} is gone: {owner.__name__} no longer sets it")
    readers = [c for c in WORKER_CLASSES if access in actinia_reads(c)]
    assert readers, f"actinia hook {path}: actinia no longer reads {access}"
