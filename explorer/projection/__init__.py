"""The 2-D map: UMAP fed with the FAISS graph, a quick PCA preview, placing new items."""

from explorer.projection.layout import Layout, map_layout, trustworthiness_on_sample
from explorer.projection.pca import normalise_layout, pca_preview
from explorer.projection.place import place_by_graph, place_new, settle_new
from explorer.projection.umap_layout import umap_layout
from explorer.projection.warmup import warm_up

__all__ = [
    "Layout",
    "map_layout",
    "normalise_layout",
    "pca_preview",
    "place_by_graph",
    "place_new",
    "settle_new",
    "trustworthiness_on_sample",
    "umap_layout",
    "warm_up",
]
