"""The vehicle timeline after `workshop dtc clear`: events in the order they happened."""

from __future__ import annotations

import json

from workshop_app.cli import main
from workshop_app.core.history import HistoryStore


def test_clear_is_stamped_between_the_scans_around_it(capsys, tmp_path):
    history = tmp_path / "h.db"
    fault = ["--fault", "coolant_sensor_open", "--settle", "2.3", "--no-sweep", "--history", str(history)]
    assert main(["dtc", "clear", *fault, "--repair", "--yes", "--ecu", "ECM", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    with HistoryStore(history) as store:
        timeline = store.timeline(run["before"]["vin"])
    scans = [e for e in timeline if e.kind == "scan"]
    clears = [e for e in timeline if e.kind == "clear"]
    assert [e.kind for e in timeline] == ["scan", "clear", "scan"], [(e.kind, e.time) for e in timeline]
    assert "pre-repair" in scans[0].text and "post-repair" in scans[1].text
    # the clear happened after the first scan ended and before the second began
    before_end = run["before"]["started"] + run["before"]["seconds"]
    assert before_end <= clears[0].time <= run["after"]["started"]
