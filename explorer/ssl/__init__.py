"""Self-supervised encoders: backbones, batched augmentations, one file per method, the trainer,
embedding extraction, loading encoders trained elsewhere, and evaluation.

Nothing here is imported by the GUI at startup; torch loads when a submodule is imported (except
``catalog``, which lists methods and backbones without torch, for menus and ``--help``).

- ``catalog``: method names with one-line descriptions, backbone names, the default method.
- ``devices.pick_device``: auto -> CUDA, then MPS, then CPU; out-of-memory detection.
- ``backbones.make_backbone``: ``small-cnn`` (CPU default), ``resnet18`` (GPU default), ``resnet50``,
  ``vit-mini`` / ``vit-tiny`` (``vit``), ``torchvision:ARCH`` / ``timm:NAME`` (``pretrained``).
- ``augment``: crop/flip/jitter/grayscale/blur as tensor ops on the device.
- ``methods``: SimCLR, MoCo v2, BYOL, VICReg, DINO, MAE, rotation, relative patch position and
  jigsaw behind one interface (``SSLMethod``: heads, view recipe, loss), by name (``make_method``).
- ``trainer.train``: the one training loop: checkpoints, resume, cancel, time budget, mixed
  precision, per-step loss reports (``Progress.loss``), out-of-memory retry, fine-tuning
  (``Supervision``).
- ``encoder``: a trained, pretrained or untrained backbone that embeds images to unit vectors.
- ``evaluate``: kNN accuracy, linear probe, raw-pixel baseline, the comparison report.
"""
