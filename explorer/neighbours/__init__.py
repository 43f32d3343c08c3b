"""FAISS index choice and the cosine kNN graph."""

from explorer.neighbours.knn import KnnGraph, knn_graph, near_duplicates

__all__ = ["KnnGraph", "knn_graph", "near_duplicates"]
