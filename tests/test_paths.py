"""`check_writable_folder`: the one check that a folder a command writes into (--out, --cache-dir, a --checkpoint's
folder) takes files."""

from __future__ import annotations

import pytest

from mqar.errors import UserError
from mqar.paths import check_writable_folder


def test_a_writable_folder_is_made_and_left_empty(tmp_path):
    folder = tmp_path / "a" / "b"
    check_writable_folder(folder, what=f"into {folder}", flag="--out")
    assert folder.is_dir() and list(folder.iterdir()) == []  # the probe file is gone


def test_an_unwritable_folder_names_the_flag(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"^cannot write into the cache .*/file/cache \(.+\); pass a writable --cache-dir$"):
        check_writable_folder(blocker / "cache", what=f"into the cache {blocker / 'cache'}", flag="--cache-dir")
