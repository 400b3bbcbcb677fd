"""`workshop info` on files that are not signal databases: one line that says what to do."""

from __future__ import annotations

import shutil

from workshop_app.cli import main


def test_info_on_a_cdd_says_what_it_is_and_points_to_import_cdd(capsys, shared_data, tmp_path):
    cdd = shared_data / "uds" / "cantools_example.cdd"
    renamed = tmp_path / "ecm_description.xml"  # recognised by its content as well as its suffix
    shutil.copy(cdd, renamed)
    for path in (cdd, renamed):
        code = main(["info", str(path)])
        out, err = capsys.readouterr()
        assert code == 1 and out == ""
        assert err.count("\n") == 1 and "Traceback" not in err
        assert str(path) in err
        assert "diagnostic description" in err and "not CAN signals" in err
        assert "workshop dtc import-cdd" in err
        assert "kcd" not in err.lower()
