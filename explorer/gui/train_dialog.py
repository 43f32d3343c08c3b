"""Training settings: method, backbone, device and budget, remembered between runs.

Train and Build map use what is saved here (``training_settings``); nothing imports torch until
the job runs (the method list comes from ``explorer.ssl.catalog``).
"""

from __future__ import annotations

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from explorer.ssl import catalog

DEVICES = {"auto": "auto (GPU when there is one)", "cpu": "CPU", "cuda": "CUDA GPU", "mps": "Apple GPU (MPS)"}
DEFAULTS = {
    "method": catalog.DEFAULT_METHOD,
    "backbone": "auto",
    "device": "auto",
    "epochs": catalog.DEFAULT_TRAIN_EPOCHS,  # 0: no limit, the time decides
    "max_minutes": catalog.DEFAULT_TRAIN_MINUTES,
    "processes": 1,
}
MAX_PROCESSES = 64


def training_settings(settings: QSettings) -> dict:
    """Keyword arguments for ``TrainConfig`` from the remembered settings (bad values fall back)."""
    out = {}
    for key, default in DEFAULTS.items():
        value = settings.value(f"train/{key}", default)
        try:
            out[key] = type(default)(value)
        except (TypeError, ValueError):
            out[key] = default
    if out["method"] not in catalog.METHODS:
        out["method"] = DEFAULTS["method"]
    if out["backbone"] not in catalog.BACKBONES:
        out["backbone"] = "auto"
    if out["device"] not in DEVICES:
        out["device"] = "auto"
    out["epochs"] = out["epochs"] if out["epochs"] > 0 else None
    out["processes"] = min(MAX_PROCESSES, max(1, out["processes"]))
    out["max_minutes"] = out["max_minutes"] if out["max_minutes"] > 0 else None
    if out["epochs"] is None and out["max_minutes"] is None:  # no end at all: the default budget
        out["max_minutes"] = DEFAULTS["max_minutes"]
    return out


class TrainDialog(QDialog):
    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Training settings")
        self.settings = settings
        current = training_settings(settings)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        layout.addLayout(form)
        self.method = QComboBox()
        for name, text in catalog.METHODS.items():
            self.method.addItem(name, name)
            self.method.setItemData(self.method.count() - 1, text, 3)  # tooltip role
        self.method.setCurrentIndex(self.method.findData(current["method"]))
        form.addRow("Method", self.method)
        self.about = QLabel("")
        self.about.setWordWrap(True)
        self.about.setObjectName("Muted")
        form.addRow("", self.about)
        self.backbone = QComboBox()
        for name, text in catalog.BACKBONES.items():
            self.backbone.addItem(f"{name} — {text}", name)
        self.backbone.setCurrentIndex(self.backbone.findData(current["backbone"]))
        form.addRow("Backbone", self.backbone)
        self.device = QComboBox()
        for name, text in DEVICES.items():
            self.device.addItem(text, name)
        self.device.setCurrentIndex(self.device.findData(current["device"]))
        form.addRow("Device", self.device)
        self.epochs = QSpinBox(minimum=0, maximum=10_000, value=current["epochs"] or 0)
        self.epochs.setSpecialValueText("no limit")
        self.epochs.setToolTip("Passes over the collection at most; with no limit the time budget decides")
        form.addRow("Epochs", self.epochs)
        self.minutes = QDoubleSpinBox(minimum=0.0, maximum=10_000.0, decimals=1, singleStep=1.0)
        self.minutes.setSpecialValueText("no limit")
        self.minutes.setValue(current["max_minutes"] or 0.0)
        self.minutes.setToolTip(
            "Stop after this many minutes; the learning-rate schedule shrinks to fit "
            f"(with neither limit: {catalog.DEFAULT_TRAIN_MINUTES:g} minutes)"
        )
        form.addRow("Time budget (minutes)", self.minutes)
        self.processes = QSpinBox(minimum=1, maximum=MAX_PROCESSES, value=current["processes"])
        self.processes.setToolTip(
            "Train in this many processes with DistributedDataParallel: one per GPU on a CUDA machine, "
            "or CPU processes sharing the cores. The batch is split between them."
        )
        form.addRow("Processes (GPUs)", self.processes)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.method.currentIndexChanged.connect(self._describe)
        self._describe()

    def _describe(self) -> None:
        self.about.setText(catalog.METHODS.get(self.method.currentData(), ""))

    def save(self) -> None:
        for key, value in (
            ("method", self.method.currentData()),
            ("backbone", self.backbone.currentData()),
            ("device", self.device.currentData()),
            ("epochs", self.epochs.value()),
            ("max_minutes", self.minutes.value()),
            ("processes", self.processes.value()),
        ):
            self.settings.setValue(f"train/{key}", value)
        self.settings.sync()
        self.accept()
