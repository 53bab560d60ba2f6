"""The GX file context adapter: create or update the objects a spec needs, writing only on change."""

from __future__ import annotations

import copy
import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from retrain.errors import SpecError
from retrain.expectations import build_suite, canonical_suite, suite_path
from retrain.settings import REPO_ROOT, Settings
from retrain.spec import DatasetSpec

if TYPE_CHECKING:
    from great_expectations import Checkpoint, ExpectationSuite, ValidationDefinition
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.data_context.file_data_context import FileDataContext
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

DATASOURCE = "retrain"
BATCH_DEFINITION = "daily_batch"
DOCS_ACTION = "update_data_docs"
DOCS_SITE = "local_site"
DOCS_INDEX_LIMIT = 100
# BASIC keeps results small: counts plus a few example values, never the full unexpected lists.
RESULT_FORMAT: dict[str, Any] = {"result_format": "BASIC", "partial_unexpected_count": 5}
# The committed configuration a new context starts from; the pipeline never writes into it.
COMMITTED_GX = REPO_ROOT / "gx"
PROJECT_FILE = "great_expectations.yml"


@dataclass(frozen=True)
class GxSetup:
    """What ensure_context left in the GX file context."""

    root: Path
    suite_path: Path
    validation_definition: str
    checkpoint: str
    changed: tuple[str, ...]


def seed_context(gx_root: Path, committed: Path = COMMITTED_GX) -> bool:
    """Copy the committed great_expectations.yml (and plugins/) into gx_root when it has none yet."""
    target = gx_root / PROJECT_FILE
    if target.is_file() or not (committed / PROJECT_FILE).is_file():
        return False
    gx_root.mkdir(parents=True, exist_ok=True)
    if (committed / "plugins").is_dir():
        shutil.copytree(committed / "plugins", gx_root / "plugins", dirs_exist_ok=True)
    tmp = gx_root / f".{PROJECT_FILE}.{uuid.uuid4().hex}.tmp"
    try:
        shutil.copyfile(committed / PROJECT_FILE, tmp)
        tmp.replace(target)  # concurrent seeders write the same bytes; the rename keeps the file whole
    finally:
        tmp.unlink(missing_ok=True)
    return True


def open_context(gx_root: Path) -> FileDataContext:
    """Open the file context in gx_root, seeding it from the committed configuration when new."""
    return _open_and_configure(gx_root)[0]


def _open_and_configure(gx_root: Path) -> tuple[FileDataContext, bool]:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    seed_context(gx_root)
    context = gx.get_context(mode="file", context_root_dir=str(gx_root))
    config = context.variables
    current = config.progress_bars
    globally = current.get("globally") if isinstance(current, dict) else getattr(current, "globally", None)
    sites = copy.deepcopy(config.data_docs_sites or {})
    index = sites.get(DOCS_SITE, {}).get("site_index_builder")
    unlimited = isinstance(index, dict) and index.get("validation_results_limit") != DOCS_INDEX_LIMIT
    if config.analytics_enabled is not False or globally is not False or unlimited:
        # Progress bars would flood Airflow task logs; analytics must never phone home from a pipeline;
        # the docs index reads every result it lists, so listing recent runs only keeps builds flat.
        config.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        config.analytics_enabled = False
        if isinstance(index, dict):
            index["validation_results_limit"] = DOCS_INDEX_LIMIT
            config.data_docs_sites = sites
        config.save()
        return context, True
    return context, False


def sync_suite(context: FileDataContext, spec: DatasetSpec) -> tuple[ExpectationSuite, bool]:
    """The stored suite for the spec, rewritten only when it differs from build_suite(spec)."""
    from great_expectations.exceptions.exceptions import DataContextError

    wanted = build_suite(spec)
    try:
        stored = context.suites.get(spec.name)
    except DataContextError:
        return context.suites.add(wanted), True
    if canonical_suite(_json(stored)) == canonical_suite(_json(wanted)):
        return stored, False
    return context.suites.add_or_update(wanted), True


def _json(suite: ExpectationSuite) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(suite.to_json_dict()))
    return data


def _sync_batch_definition(context: FileDataContext, spec: DatasetSpec) -> tuple[BatchDefinition[Any], bool]:
    from great_expectations.datasource.fluent.pandas_datasource import PandasDatasource

    changed = False
    try:
        source = context.data_sources.get(DATASOURCE)
    except KeyError:
        source = context.data_sources.add_pandas(DATASOURCE)
        changed = True
    if not isinstance(source, PandasDatasource):
        raise SpecError(f"GX data source {DATASOURCE!r} in {context.root_directory} is not a pandas source")
    if spec.name in source.get_asset_names():
        asset = source.get_asset(spec.name)
    else:
        asset = source.add_dataframe_asset(spec.name)
        changed = True
    try:
        return asset.get_batch_definition(BATCH_DEFINITION), changed
    except KeyError:
        return asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION), True


def _sync_validation_definition(
    context: FileDataContext, spec: DatasetSpec, suite: ExpectationSuite, batch: BatchDefinition[Any]
) -> tuple[ValidationDefinition, bool]:
    import great_expectations as gx
    from great_expectations.exceptions.exceptions import DataContextError

    try:
        current = context.validation_definitions.get(spec.name)
    except DataContextError:
        current = None
    if current is not None and current.suite.id == suite.id and current.data.id == batch.id:
        return current, False
    if current is not None:
        context.validation_definitions.delete(spec.name)
    wanted = gx.ValidationDefinition(name=spec.name, data=batch, suite=suite)
    return context.validation_definitions.add(wanted), True


def _sync_checkpoint(
    context: FileDataContext, spec: DatasetSpec, validation: ValidationDefinition
) -> tuple[Checkpoint, bool]:
    import great_expectations as gx
    from great_expectations.checkpoint.actions import UpdateDataDocsAction
    from great_expectations.exceptions.exceptions import DataContextError

    try:
        current = context.checkpoints.get(spec.name)
    except DataContextError:
        current = None
    if (
        current is not None
        and [v.id for v in current.validation_definitions] == [validation.id]
        and [a.name for a in current.actions] == [DOCS_ACTION]
        and current.result_format == RESULT_FORMAT
    ):
        return current, False
    if current is not None:
        context.checkpoints.delete(spec.name)
    wanted = gx.Checkpoint(
        name=spec.name,
        validation_definitions=[validation],
        actions=[UpdateDataDocsAction(name=DOCS_ACTION)],
        result_format=RESULT_FORMAT,
    )
    return context.checkpoints.add(wanted), True


def prepare_checkpoint(gx_root: Path, spec: DatasetSpec) -> tuple[FileDataContext, Checkpoint, GxSetup]:
    """Open the context, bring every object for the spec up to date and return its checkpoint."""
    context, config_changed = _open_and_configure(gx_root)
    suite, suite_changed = sync_suite(context, spec)
    batch, batch_changed = _sync_batch_definition(context, spec)
    validation, validation_changed = _sync_validation_definition(context, spec, suite, batch)
    checkpoint, checkpoint_changed = _sync_checkpoint(context, spec, validation)
    flags = {
        "project_config": config_changed,
        "suite": suite_changed,
        "data_source": batch_changed,
        "validation_definition": validation_changed,
        "checkpoint": checkpoint_changed,
    }
    setup = GxSetup(
        root=gx_root,
        suite_path=suite_path(gx_root, spec),
        validation_definition=validation.name,
        checkpoint=checkpoint.name,
        changed=tuple(name for name, flag in flags.items() if flag),
    )
    return context, checkpoint, setup


def sync_context(gx_root: Path, spec: DatasetSpec) -> GxSetup:
    """Create or update the file context for a spec and say what changed."""
    return prepare_checkpoint(gx_root, spec)[2]


def result_identifier(spec: DatasetSpec, run_id: RunIdentifier) -> ValidationResultIdentifier:
    """Store key of a whole-dataframe validation result of the spec's suite (as GX names it)."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    return ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=spec.name),
        run_id=run_id,
        batch_identifier=f"{DATASOURCE}-{spec.name}",
    )


def result_path(context: FileDataContext, key: ValidationResultIdentifier) -> Path:
    """The local JSON file of a stored validation result."""
    url = context.validation_results_store.store_backend.get_url_for_key(key.to_tuple())  # type: ignore[no-untyped-call]
    return Path(unquote(url.removeprefix("file://")))


def build_docs(context: FileDataContext, keys: list[ValidationResultIdentifier]) -> Path | None:
    """Render the given results and the index once (range ingest), and return the local index."""
    if keys:
        context.build_data_docs(resource_identifiers=keys)
    return data_docs_index(context)


def data_docs_index(context: FileDataContext) -> Path | None:
    """The local Data Docs index.html, once built."""
    for site in context.get_docs_sites_urls():
        url = site.get("site_url")
        if url and url.startswith("file://"):
            return Path(unquote(url.removeprefix("file://")))
    return None


def write_suite(spec: DatasetSpec, gx_root: Path) -> Path:
    """Write (or update, only when it differs) the spec's suite into the GX file context."""
    sync_suite(open_context(gx_root), spec)
    return suite_path(gx_root, spec)


def ensure_context(settings: Settings, spec: DatasetSpec) -> GxSetup:
    """Create or update the GX file context for a spec: suite, data source, validation, checkpoint."""
    return sync_context(settings.gx_root, spec)
