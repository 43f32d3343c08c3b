"""Self-supervised encoders: backbones, batched augmentations, one file per method, the trainer,
embedding extraction and evaluation.

Nothing here is imported by the GUI at startup; torch loads when a submodule is imported.

- ``devices.pick_device``: auto -> CUDA, then MPS, then CPU.
- ``backbones.make_backbone``: ``small-cnn`` (CPU default), ``resnet18`` (GPU default), ``resnet50``.
- ``augment``: crop/flip/jitter/grayscale/blur as tensor ops on the device.
- ``methods``: SimCLR, BYOL behind one interface (``make_method``).
- ``trainer.train``: the training loop with checkpoints, resume, cancel and a time budget.
- ``encoder``: a trained or untrained backbone that embeds images to unit vectors.
- ``evaluate``: kNN accuracy, linear probe, raw-pixel baseline.
"""
