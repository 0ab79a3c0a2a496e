"""kit.outputs' atomic writes: the one helper every file the kit writes goes through (issue 22)."""
import numpy as np
import pytest

from kit.outputs import atomic_path, atomic_write_bytes, atomic_write_text


def test_atomic_writes_replace_the_file_and_leave_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old")
    atomic_write_text(path, "naïve\n")
    assert path.read_bytes() == "naïve\n".encode("utf-8")
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_failed_writer_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    path = tmp_path / "state.pt"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            assert tmp.parent == tmp_path and tmp.name.startswith(".state.pt.tmp-")
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]


def test_a_writer_that_adds_its_own_suffix(tmp_path):
    path = tmp_path / "features.npz"
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, x=np.arange(3))
    assert np.load(path)["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.npz"]
