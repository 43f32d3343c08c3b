"""Embedding Explorer: turn a folder of unlabelled images into a labelled dataset."""

__version__ = "0.1.0"


def open(folder, state_dir=None, progress=None):  # noqa: A001 (explorer.open, as in the README)
    """The :class:`explorer.notebook.Collection` of the images in ``folder``: the command line's
    steps as methods and selections as pandas DataFrames (see ``explorer.notebook``)."""
    from explorer.notebook import open as open_collection

    return open_collection(folder, state_dir) if progress is None else open_collection(folder, state_dir, progress)
