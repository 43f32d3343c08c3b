"""Embedding on a Ray cluster (``explorer embed --ray``): Ray Data decodes, one actor per GPU
embeds, shards are merged into an ordinary embed run. Training on several processes is
``explorer.ssl.distributed``.

Nothing here is imported by the rest of the core; ray is imported inside the functions that
need it (it is the optional ``ray`` extra).
"""
