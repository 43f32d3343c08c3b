"""Datasets in and out.

In:  ``manifest.import_labels`` (CSV / JSON Lines), ``folders.labels_from_folders`` (class-per-folder
     collections), ``embeddings.import_embeddings`` (.npy + paths, or Parquet).
Out: ``export.export`` and ``export.preview_export`` over ``export.FORMATS`` (csv, jsonl,
     imagefolder, huggingface, coco, parquet); every writer is atomic (``atomic``) and class names
     become safe, distinct file names (``names``).
"""
