"""``explorer.gui.app``: the window starts with light imports and can take its own picture."""

from __future__ import annotations

import os
import subprocess
import sys

from PIL import Image


def test_screenshot_of_a_project_with_a_map(tmp_path, project_dir):
    out = tmp_path / "window.png"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "explorer.cli", str(project_dir), "--screenshot", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with Image.open(out) as image:
        assert image.width >= 800 and image.height >= 500
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50  # a drawn window, not a blank picture


def test_window_starts_without_heavy_libraries(tmp_path, project_dir):
    code = (
        "import sys\n"
        "from explorer.gui.app import run\n"
        f"code = run({str(project_dir)!r}, screenshot={str(tmp_path / 'x.png')!r})\n"
        "heavy = [m for m in ('torch', 'umap', 'faiss', 'numba', 'torchvision') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(code)\n"
    )
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HOME": str(tmp_path),
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


def test_no_screen_and_no_screenshot_says_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "explorer.cli", str(tmp_path)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "--screenshot" in done.stderr and "xvfb-run" in done.stderr


def test_demo_opens_with_a_first_map(tmp_path):
    """The README's first command, minus the install: the newcomer sees a map, not an empty window."""
    out = tmp_path / "demo.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "c"), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "explorer.cli", "demo", str(tmp_path / "demo"), "--screenshot", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    from explorer import workflow
    from explorer.store import Project

    with Project(tmp_path / "demo" / "digits", create=False) as project:
        assert workflow.current_map(project).xy.shape == (1797, 2)
    assert out.stat().st_size > 10_000
