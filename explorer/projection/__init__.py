"""The 2-D map: UMAP fed with the FAISS graph, a quick PCA preview, placing new items."""

from explorer.projection.pca import normalise_layout, pca_preview
from explorer.projection.place import place_new
from explorer.projection.umap_layout import umap_layout, warm_up

__all__ = ["normalise_layout", "pca_preview", "place_new", "umap_layout", "warm_up"]
