"""Embedding Explorer: turn a folder of unlabelled images into a labelled dataset."""

__version__ = "0.1.0"
