"""What the engine offers, by name, without importing torch (for menus, --help and the window).

``METHODS`` maps each method's name (``explorer train --method NAME``) to a one-line description;
the classes in ``explorer.ssl.methods`` take their descriptions from here.
"""

from __future__ import annotations

DEFAULT_METHOD = "simclr"
DEFAULT_TRAIN_MINUTES = 10.0
DEFAULT_TRAIN_EPOCHS = 100
"""With no limit given, training ends after ten minutes (the issue's budget on two CPU cores) or 100
epochs, whichever comes first; a limit given replaces both (``--max-minutes`` alone: as many epochs as
fit; ``--epochs`` alone: all of them). A 5,000-image collection makes 90-100 epochs in ten minutes
of two cores; the 30-epoch cap before ended such a run after four (benchmarks/README.md, "The
default training budget"); on a GPU 100 epochs come long before the ten minutes."""

METHODS: dict[str, str] = {
    "simclr": "SimCLR: pull two augmented views of an image together, push other images away",
    "moco": "MoCo v2: contrast against a long queue of keys from a momentum encoder",
    "byol": "BYOL: predict a slow-moving target network's view of the image (no negatives)",
    "vicreg": "VICReg: match two views while keeping every feature varied and decorrelated",
    "dino": "DINO: a student matches a momentum teacher across global and small local crops",
    "mae": "MAE: hide 75% of the patches and paint them back (needs a ViT backbone)",
    "rotation": "Rotation: tell which of four quarter turns an image was given (pretext task)",
    "relative-position": "Relative position: tell where a patch sat next to the centre patch (pretext task)",
    "jigsaw": "Jigsaw: put nine shuffled tiles of an image back in order (pretext task)",
}

BACKBONES: dict[str, str] = {
    "auto": "small-cnn on the CPU, resnet18 on a GPU (a ViT for MAE)",
    "small-cnn": "six conv layers, trains in minutes on two CPU cores",
    "resnet18": "torchvision ResNet-18, small-image stem below 64 px",
    "resnet50": "torchvision ResNet-50, small-image stem below 64 px",
    "vit-mini": "Vision Transformer, width 128, 6 blocks (CPU-sized)",
    "vit-tiny": "Vision Transformer, width 192, 12 blocks (DeiT-Ti)",
}
