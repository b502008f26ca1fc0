"""Kibana saved objects: data views, saved searches, Lens charts and a dashboard (docs/kibana.md).

The objects are generated in :mod:`.build` (``newsmon kibana export`` writes them to
``config/kibana/*.ndjson``, one saved search per alert rule) and imported from those files by
:mod:`.api` with Kibana's saved-objects import API, ``overwrite=true``: every object has a fixed
id, so importing again replaces the objects instead of adding copies. Before anything is sent,
:mod:`.check` checks that every reference resolves and every field an object uses exists in the
index template of its data view with a type that supports the use.

Modules: :mod:`.objects` (the saved object, ndjson files, index prefix), :mod:`.build` (the
objects newsmon ships), :mod:`.check` (against the index templates), :mod:`.settings`
(``NEWSMON_KIBANA_*``), :mod:`.api` (HTTP: wait, import).
"""

from .api import ImportReport, KibanaError, import_objects, wait_until_available
from .build import build_objects, export_files
from .check import FieldInfo, check_objects, index_fields, query_fields
from .objects import (
    ALERTS_FILE,
    BASE_FILE,
    DEFAULT_PREFIX,
    SavedObject,
    kibana_dir,
    load_objects,
    object_files,
    parse_ndjson,
    render_ndjson,
    search_query,
    with_prefix,
)
from .settings import KibanaSettings

__all__ = [
    "ALERTS_FILE",
    "BASE_FILE",
    "DEFAULT_PREFIX",
    "FieldInfo",
    "ImportReport",
    "KibanaError",
    "KibanaSettings",
    "SavedObject",
    "build_objects",
    "check_objects",
    "export_files",
    "import_objects",
    "index_fields",
    "kibana_dir",
    "load_objects",
    "object_files",
    "parse_ndjson",
    "query_fields",
    "render_ndjson",
    "search_query",
    "wait_until_available",
    "with_prefix",
]
