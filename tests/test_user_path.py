"""The whole path from the command line, on the demo digits, as a user would run it."""

import csv
import re
import subprocess
import sys
from collections import Counter

import pytest

from explorer.cli import main
from explorer.demo import write_demo


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_cli_path_on_demo_digits(tmp_path, capsys):
    demo = write_demo(tmp_path / "demo")
    images = str(demo.images)
    truth = {r["path"]: r["label"] for r in _read(demo.truth)}
    assert len(truth) == 1797
    # neutral names: the file order does not follow the dataset's 0..9 cycle
    assert sum(truth[f"img-{k:04d}.png"] == str(k % 10) for k in range(1797)) < 400

    assert main(["scan", images]) == 0
    assert "1797 image files" in capsys.readouterr().out
    assert main(["train", images, "--epochs", "1", "--batch-size", "128"]) == 0
    assert main(["embed", images]) == 0
    assert main(["map", images]) == 0
    capsys.readouterr()
    # a trained encoder's vectors all lie close together; twins are judged in the whitened space,
    # so the digits (none saved twice) give few pairs, not most of the collection (raw cosine 0.98)
    assert main(["duplicates", images]) == 0
    assert len(capsys.readouterr().out.splitlines()) < 1797 // 20

    # three seeds per class, as a person would click them
    seeds, per_class = [], Counter()
    for path, label in sorted(truth.items()):
        if per_class[label] < 3:
            per_class[label] += 1
            seeds.append((path, label))
    seed_file = tmp_path / "seeds.csv"
    with open(seed_file, "w", newline="") as f:
        csv.writer(f).writerows([("path", "label"), *seeds])
    assert main(["labels", "import", images, str(seed_file), "--as", "seed"]) == 0
    assert main(["propagate", images]) == 0
    out = tmp_path / "labels.csv"
    assert main(["export", images, str(out)]) == 0

    rows = _read(out)
    assert len(rows) == 1797
    # Propagation runs in the label space of the whitened embeddings, whose graph can fall into a
    # few pieces; the bridge (the whitened vectors' own kNN graph, weakly) reaches a piece no seed
    # is in, so every image gets a label (there with a confidence near 0).
    labelled = [r for r in rows if r["label"]]
    assert len(labelled) == 1797
    sources = Counter(r["source"] for r in labelled)
    assert sources == {"seed": 30, "pseudo": len(labelled) - 30}
    pseudo = [r for r in rows if r["source"] == "pseudo"]
    assert all(0.0 <= float(r["confidence"]) <= 1.0 for r in pseudo)
    accuracy = sum(r["label"] == truth[r["path"]] for r in pseudo) / len(pseudo)
    # one epoch of training and 3 seeds a class (raw pixels 0.95; a real run trains for minutes).
    # Measured (torch 2.14.1, CPU) before whitening: seed 0, this test's, 0.838 (1480 of 1767);
    # seeds 1-5 0.797, 0.819, 0.843, 0.904, 0.777; with whitening, seed 0: 0.979 (1703 of 1740,
    # 27 unreached); with the bridge, 0.964 (1703 of 1767: those 27 labelled, wrongly).
    # Another platform's rounding moves the run as another seed would, so the bound sits below
    # the lowest seed: below 0.75 something on the path lost what the encoder and the graph know
    assert accuracy > 0.75, f"pseudo-labels {accuracy:.2f} correct; chance is 0.10"

    tree = tmp_path / "tree"
    assert main(["export", images, str(tree), "--format", "imagefolder", "--include", "seed"]) == 0
    assert sum(1 for _ in tree.glob("*/*.png")) == 30

    # the installed console command works and reports the project
    status = subprocess.run(
        [sys.executable, "-m", "explorer.cli", "status", images], capture_output=True, text=True, check=True
    )
    assert "30 seed" in status.stdout and f"{len(labelled) - 30} pseudo" in status.stdout
    # the train run's line gives its wall time; the last epoch's time is named as such
    train_line = next(line for line in status.stdout.splitlines() if " train " in line)
    assert re.search(r" done +\d+(s|m\d\ds) ", train_line) and "epoch_seconds=" in train_line
    assert " seconds=" not in train_line


def test_bad_input_gets_a_clear_message_and_nonzero_exit(tmp_path, capsys):
    assert main(["scan", str(tmp_path / "nowhere")]) == 1
    assert "image folder not found" in capsys.readouterr().err
    assert main(["status", str(tmp_path)]) == 1
    assert "explorer scan" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", str(tmp_path), "--epochs", "-3"])
    assert exc.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err
    (tmp_path / "a.png").write_bytes(b"")
    assert main(["scan", str(tmp_path)]) == 0
    assert main(["map", str(tmp_path)]) == 1
    assert "no embeddings yet" in capsys.readouterr().err
    assert main(["export", str(tmp_path), str(tmp_path / "x.csv"), "--include", "seed,guess"]) == 1
    assert "guess" in capsys.readouterr().err
