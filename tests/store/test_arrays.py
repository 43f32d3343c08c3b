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
