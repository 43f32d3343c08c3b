"""The user's path as plain functions over a project: scan, train, embed, map, propagate, export.

The CLI, the window's workers and the tests all call these. Each long one takes a progress
callback and a cancel token, records a run in the store, and only makes its result current once
it is complete (see ``explorer.store.project``). torch, faiss and umap are imported inside.

One module a step (``scanning``, ``training``, ``embedding``, ...); this package only gathers
their public names, so ``workflow.embed`` and ``from explorer.workflow import embed`` both work.
"""

from explorer.exchange.embeddings import EmbeddingImport, import_embeddings
from explorer.exchange.export import FORMATS, ExportReport, export, format_for, preview_export
from explorer.exchange.folders import labels_from_folders
from explorer.store.current import Embeddings, MapData, current_embeddings, current_map
from explorer.workflow.checking import LabelCheck, Quality, check_labels, near_duplicates, quality
from explorer.workflow.embedding import Similar, embed, similar
from explorer.workflow.encoders import PIXEL_SIZE, PIXELS, pixel_vectors, resolve_encoder
from explorer.workflow.evaluation import check_against_pixels, evaluate
from explorer.workflow.labelling import (
    CALIBRATION_NOTE,
    PropagationResult,
    Suggestions,
    calibrate,
    compute_propagation,
    import_labels,
    parse_sources,
    propagate,
    save_propagation,
    suggest,
)
from explorer.workflow.mapping import Clusters, MapPreview, clusters, label_cluster, make_map, map_preview
from explorer.workflow.pipeline import run_all
from explorer.workflow.runs import WorkflowError
from explorer.workflow.scanning import load_images, scan
from explorer.workflow.status import status_text
from explorer.workflow.training import TRAIN_MEMORY_SHARE, finetune, train, train_with_labels, training_sample

__all__ = [
    "CALIBRATION_NOTE",
    "FORMATS",
    "PIXELS",
    "PIXEL_SIZE",
    "TRAIN_MEMORY_SHARE",
    "Clusters",
    "EmbeddingImport",
    "Embeddings",
    "ExportReport",
    "LabelCheck",
    "MapData",
    "MapPreview",
    "PropagationResult",
    "Quality",
    "Similar",
    "Suggestions",
    "WorkflowError",
    "calibrate",
    "check_against_pixels",
    "check_labels",
    "clusters",
    "compute_propagation",
    "current_embeddings",
    "current_map",
    "embed",
    "evaluate",
    "export",
    "finetune",
    "format_for",
    "import_embeddings",
    "import_labels",
    "label_cluster",
    "labels_from_folders",
    "load_images",
    "make_map",
    "map_preview",
    "near_duplicates",
    "parse_sources",
    "pixel_vectors",
    "preview_export",
    "propagate",
    "quality",
    "resolve_encoder",
    "run_all",
    "save_propagation",
    "scan",
    "similar",
    "status_text",
    "suggest",
    "train",
    "train_with_labels",
    "training_sample",
]
