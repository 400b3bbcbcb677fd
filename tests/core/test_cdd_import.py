"""DIDs imported from the real CDD file decode exactly as cantools decodes them."""

from __future__ import annotations

import random

import cantools
import pytest

from workshop_app.core.diag.cdd_import import cdd_ecu, write_spec
from workshop_app.core.diag.ecu_spec import EcuSpecError, load_vehicle_spec


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # cantools' CDD support is deprecated
def test_every_cdd_did_decodes_like_cantools(tmp_path, shared_data):
    cdd = shared_data / "uds" / "cantools_example.cdd"
    spec = load_vehicle_spec(
        write_spec([cdd_ecu(cdd, name="EX", request_id=0x7E2, response_id=0x7EA)], tmp_path / "s.json")
    )
    ecu = spec.ecu("EX")
    reference = cantools.database.load_file(str(cdd))
    rng = random.Random(3)
    checked = 0
    for did in reference.dids:
        if not did.length or not did.datas:
            continue
        ours = ecu.did(did.identifier)
        assert ours.name == did.name and ours.length == did.length
        for _ in range(50):
            data = bytes(rng.getrandbits(8) for _ in range(did.length))
            expected = did.decode(data, decode_choices=True)
            plain = {k: (v if isinstance(v, int | float) else str(v)) for k, v in expected.items()}
            if ours.type == "record":
                assert {f.name: f.decode(data) for f in ours.fields} == plain
                assert ours.decode(data).count("=") == len(plain)  # the text shows every value
            else:
                (value,) = plain.values()
                assert ours.decode(data) == value
            checked += 1
    assert checked == 13 * 50


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # cantools' CDD support is deprecated
def test_not_a_cdd_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.cdd"
    bad.write_text("<nope")
    with pytest.raises(EcuSpecError, match=r"x\.cdd"):
        cdd_ecu(bad, name="X", request_id=1, response_id=2)
