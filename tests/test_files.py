"""Files written so that a crash never leaves half of one."""

import pytest

from vaelib._files import replaced_atomically, write_text_atomically


def test_an_error_while_writing_leaves_the_old_file(tmp_path):
    path = tmp_path / "state.json"
    write_text_atomically(path, "old")
    with pytest.raises(RuntimeError), replaced_atomically(path) as partial:
        partial.write_text("half of the ne")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no partial file left behind
    write_text_atomically(path, "new")
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
