import numpy as np
import pytest

from explorer.store.arrays import load_array, save_array, write_atomically


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "runs" / "1" / "xy.npy"
    save_array(path, np.arange(4))

    def half_then_fail(f):
        f.write(b"\x93NUMPY half a header")
        raise OSError("No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_atomically(path, half_then_fail)
    np.testing.assert_array_equal(load_array(path), np.arange(4))
    assert [p.name for p in path.parent.iterdir()] == ["xy.npy"]
    save_array(path, np.ones((2, 2), np.float32))
    assert load_array(path, mmap=True).shape == (2, 2)
    assert load_array(tmp_path / "absent.npy") is None


def test_reads_survive_the_python_3_11_ast_race_and_other_system_errors_still_surface(tmp_path, monkeypatch):
    import threading

    from explorer.store import arrays

    path = tmp_path / "a.npy"
    save_array(path, np.arange(6).reshape(2, 3))
    real_load = np.load
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=33, after=30)")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(arrays.np, "load", flaky)
    np.testing.assert_array_equal(load_array(path), np.arange(6).reshape(2, 3))
    assert len(calls) == 2

    def broken(*args, **kwargs):
        raise SystemError("something else")

    monkeypatch.setattr(arrays.np, "load", broken)
    with pytest.raises(SystemError, match="something else"):
        load_array(path)
    monkeypatch.setattr(arrays.np, "load", real_load)

    # many threads reading at once all get the right arrays
    results, errors = [], []

    def read_many():
        try:
            for _ in range(50):
                results.append(int(load_array(path, mmap=True).sum()))
        except Exception as exc:  # noqa: BLE001 - the test reports any failure below
            errors.append(exc)

    threads = [threading.Thread(target=read_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [15] * 200
