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


def _one_line_error(capsys, path) -> str:
    code = main(["info", str(path)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err and str(path) in err
    return err


def test_info_on_an_odx_or_pdx_says_it_is_a_diagnostic_description(capsys, tmp_path):
    odx = '<?xml version="1.0"?>\n<ODX MODEL-VERSION="2.2.0"><DIAG-LAYER-CONTAINER/></ODX>\n'
    (tmp_path / "ecm.odx-d").write_text(odx)
    (tmp_path / "ecm.xml").write_text(odx)  # by content
    (tmp_path / "ecm.pdx").write_bytes(b"PK\x03\x04" + bytes(60))  # a zip archive
    for name in ("ecm.odx-d", "ecm.xml", "ecm.pdx"):
        err = _one_line_error(capsys, tmp_path / name)
        assert "ODX" in err and "diagnostic description" in err and "not CAN signals" in err
        assert "kcd" not in err.lower() and "binary" not in err


def test_info_on_a_log_file_points_to_decode(capsys, shared_data):
    for log in (
        shared_data / "logs" / "savvycan_tesla_model_s_candump.log",
        shared_data / "logs" / "css_j1939_truck_00000001.MF4",
    ):
        err = _one_line_error(capsys, log)
        assert "a CAN log, not a signal database" in err and "workshop decode" in err
        assert "ARXML" not in err and "binary" not in err
